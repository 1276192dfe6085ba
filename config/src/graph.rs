//! The services' dependency graph: cycles and start order.

use std::collections::{BTreeMap, BTreeSet};

use crate::schema::ServiceConfig;

/// Services that depend on each other in a circle, e.g. `a -> b -> a` (`a` depends on `b`,
/// which depends on `a`). The first name is repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle {}", self.0.join(" -> "))]
pub struct DependencyCycle(pub Vec<String>);

/// Each service's dependencies among the services kept by `keep`.
type Graph<'a> = BTreeMap<&'a str, Vec<&'a str>>;

fn graph<'a>(
    services: &'a BTreeMap<String, ServiceConfig>,
    keep: impl Fn(&ServiceConfig) -> bool,
) -> Graph<'a> {
    let kept = |name: &str| services.get(name).is_some_and(&keep);
    services
        .iter()
        .filter(|(_, s)| keep(s))
        .map(|(name, s)| {
            let deps = s.depends_on.keys().map(String::as_str).filter(|d| kept(d));
            (name.as_str(), deps.collect())
        })
        .collect()
}

/// Every dependency cycle among all services (enabled or not), each once, starting from its
/// smallest name; at least one per group of services caught in cycles.
pub(crate) fn find_cycles(services: &BTreeMap<String, ServiceConfig>) -> Vec<DependencyCycle> {
    cycles(&graph(services, |_| true))
}

fn cycles(graph: &Graph<'_>) -> Vec<DependencyCycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = graph.keys().map(|n| (*n, Mark::New)).collect();
    let mut found = BTreeSet::new();
    for &start in graph.keys() {
        if mark.get(start) != Some(&Mark::New) {
            continue;
        }
        mark.insert(start, Mark::Active);
        // Depth-first, without recursion: (node, index of its next dependency).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            let Some(&dep) = graph.get(node).and_then(|deps| deps.get(*next)) else {
                mark.insert(node, Mark::Done);
                stack.pop();
                continue;
            };
            *next += 1;
            match mark.get(dep) {
                Some(Mark::New) => {
                    mark.insert(dep, Mark::Active);
                    stack.push((dep, 0));
                }
                Some(Mark::Active) => {
                    let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                    let smallest = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                    cycle.rotate_left(smallest);
                    cycle.push(cycle[0]);
                    found.insert(cycle.into_iter().map(str::to_owned).collect::<Vec<_>>());
                }
                _ => {}
            }
        }
    }
    found.into_iter().map(DependencyCycle).collect()
}

/// The enabled services, each after its dependencies, ties broken by name.
pub(crate) fn start_order(
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<Vec<&str>, DependencyCycle> {
    let graph = graph(services, |s| s.enabled);
    let mut waiting: BTreeMap<&str, usize> = graph.iter().map(|(n, d)| (*n, d.len())).collect();
    let mut free: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, w)| **w == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::with_capacity(graph.len());
    while let Some(next) = free.pop_first() {
        order.push(next);
        waiting.remove(next);
        for (name, deps) in &graph {
            if deps.contains(&next)
                && let Some(w) = waiting.get_mut(name)
            {
                // `depends_on` is a map: each dependency counts once.
                *w = w.saturating_sub(1);
                if *w == 0 {
                    free.insert(name);
                }
            }
        }
    }
    if order.len() == graph.len() {
        return Ok(order);
    }
    let rest: Graph<'_> = graph
        .into_iter()
        .filter(|(n, _)| !order.contains(n))
        .collect();
    let mut cycles = cycles(&rest);
    Err(if cycles.is_empty() {
        DependencyCycle(rest.keys().map(|n| (*n).to_owned()).collect())
    } else {
        cycles.remove(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::DependencyCondition;

    fn services(spec: &[(&str, &[&str], bool)]) -> BTreeMap<String, ServiceConfig> {
        spec.iter()
            .map(|(name, deps, enabled)| {
                let s = ServiceConfig {
                    command: "x".into(),
                    enabled: *enabled,
                    depends_on: deps
                        .iter()
                        .map(|d| ((*d).to_owned(), DependencyCondition::Started))
                        .collect(),
                    ..ServiceConfig::default()
                };
                ((*name).to_owned(), s)
            })
            .collect()
    }

    #[test]
    fn order_is_topological_then_by_name() {
        let s = services(&[
            ("web", &["camera", "detector"], true),
            ("detector", &["camera"], true),
            ("camera", &[], true),
            ("aaa", &[], true),
            ("off", &["camera"], false),
        ]);
        assert_eq!(
            start_order(&s).unwrap(),
            ["aaa", "camera", "detector", "web"]
        );
        assert!(find_cycles(&s).is_empty());
    }

    #[test]
    fn cycles_are_named() {
        type Spec<'a> = &'a [(&'a str, &'a [&'a str], bool)];
        let cases: [(Spec<'_>, &[&str]); 3] = [
            (
                &[("a", &["b"], true), ("b", &["a"], true)],
                &["a -> b -> a"],
            ),
            (&[("a", &["a"], true)], &["a -> a"]),
            (
                &[
                    ("x", &["y"], true),
                    ("y", &["z"], true),
                    ("z", &["x"], true),
                    ("w", &["x"], true),
                ],
                &["x -> y -> z -> x"],
            ),
        ];
        for (spec, want) in cases {
            let s = services(spec);
            let got: Vec<String> = find_cycles(&s).iter().map(|c| c.0.join(" -> ")).collect();
            assert_eq!(got, want);
            assert_eq!(
                start_order(&s).unwrap_err().to_string(),
                format!("dependency cycle {}", want[0])
            );
        }
    }
}

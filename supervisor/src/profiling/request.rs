//! What a profile request asks for: `?seconds=N&format=svg`, checked against the configured
//! maximum. Pure, so the rules are a table of cases.

use std::time::Duration;

/// How long a profile runs when the request does not say (as Go's `net/http/pprof`).
pub const DEFAULT_SECONDS: u64 = 30;

/// The body a profile is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pprof's protobuf (`profile.proto`), what `go tool pprof` reads. The default.
    Protobuf,
    /// A flame graph, an SVG a browser shows.
    Svg,
}

/// A valid profile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileRequest {
    /// How long to sample.
    pub duration: Duration,
    /// What to answer with.
    pub format: Format,
}

/// Why a request was refused (a 400, with this as its message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `seconds` is not a whole number in range.
    #[error(
        "seconds = {value:?}: expected a whole number of seconds from 1 to {max} (profiling.max_duration)"
    )]
    Seconds {
        /// The value as sent.
        value: String,
        /// The largest allowed.
        max: u64,
    },
    /// `format` is not one of ours.
    #[error("format = {0:?}: expected \"svg\" (a flame graph) or \"proto\" (the default)")]
    Format(String),
    /// A parameter given twice, which would make the answer depend on which one we read.
    #[error("{0} is given more than once")]
    Repeated(&'static str),
}

/// Reads the query string of `GET /debug/pprof/profile`. Other parameters are ignored, as Go's
/// handler ignores them. `seconds` defaults to [`DEFAULT_SECONDS`] or `max`, the smaller.
pub fn parse(query: Option<&str>, max: Duration) -> Result<ProfileRequest, RequestError> {
    let max = max.as_secs().max(1);
    let mut seconds: Option<&str> = None;
    let mut format: Option<&str> = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, name) = match key {
            "seconds" => (&mut seconds, "seconds"),
            "format" => (&mut format, "format"),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(RequestError::Repeated(name));
        }
    }
    let seconds = match seconds {
        None => DEFAULT_SECONDS.min(max),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(RequestError::Seconds {
                    value: text.to_owned(),
                    max,
                });
            }
        },
    };
    let format = match format {
        None | Some("proto" | "protobuf" | "pb") => Format::Protobuf,
        Some("svg" | "flamegraph") => Format::Svg,
        Some(other) => return Err(RequestError::Format(other.to_owned())),
    };
    Ok(ProfileRequest {
        duration: Duration::from_secs(seconds),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let max = Duration::from_secs(60);
        let ok = |secs, format| {
            Ok(ProfileRequest {
                duration: Duration::from_secs(secs),
                format,
            })
        };
        let bad_secs = |v: &str| {
            Err(RequestError::Seconds {
                value: v.into(),
                max: 60,
            })
        };
        let cases: [(Option<&str>, Result<ProfileRequest, RequestError>); 15] = [
            (None, ok(30, Format::Protobuf)),
            (Some(""), ok(30, Format::Protobuf)),
            (Some("seconds=5"), ok(5, Format::Protobuf)),
            (Some("seconds=60"), ok(60, Format::Protobuf)),
            (Some("seconds=2&format=svg"), ok(2, Format::Svg)),
            (Some("format=proto&seconds=1"), ok(1, Format::Protobuf)),
            (Some("debug=1&seconds=3&gc=1"), ok(3, Format::Protobuf)),
            (Some("seconds=61"), bad_secs("61")),
            (Some("seconds=0"), bad_secs("0")),
            (Some("seconds=-1"), bad_secs("-1")),
            (Some("seconds=1.5"), bad_secs("1.5")),
            (Some("seconds="), bad_secs("")),
            (
                Some("seconds=99999999999999999999"),
                bad_secs("99999999999999999999"),
            ),
            (Some("format=png"), Err(RequestError::Format("png".into()))),
            (
                Some("seconds=1&seconds=2"),
                Err(RequestError::Repeated("seconds")),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(parse(query, max), want, "{query:?}");
        }
    }

    #[test]
    fn the_default_never_exceeds_the_maximum() {
        let got = parse(None, Duration::from_secs(10)).map(|r| r.duration);
        assert_eq!(got, Ok(Duration::from_secs(10)));
        // A maximum under a second still allows one second (config validation refuses it).
        let got = parse(Some("seconds=1"), Duration::from_millis(10)).map(|r| r.duration);
        assert_eq!(got, Ok(Duration::from_secs(1)));
    }
}

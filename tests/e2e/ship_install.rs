//! `deploy/install.sh` into a temporary DESTDIR, from a build directory holding the real
//! `stackctl` and stand-ins for the plugins: the files and their modes, a configuration the
//! operator edited never overwritten, an unedited one upgraded, and `--uninstall` removing
//! exactly what was installed.
//!
//! The script runs from a copy of its part of the checkout (`deploy/`, `config/`), so a test can
//! ship a "new version" of the configuration without touching the real one. It runs with `sh`
//! (dash on Debian), so bashisms fail here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stackctl_tests::bin;

const SHIPPED_CONFIG: &str = "etc/stackctl/stackctl.toml";
const NEW_CONFIG: &str = "etc/stackctl/stackctl.toml.new";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// A source tree (the script, the unit, the configuration), a build directory and a DESTDIR.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// With the real stackctl and the named plugin stand-ins in the build directory.
    fn new(plugins: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        for file in [
            "deploy/install.sh",
            "deploy/stackctl.service",
            "config/stackctl.toml",
        ] {
            let to = src.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo().join(file), &to).unwrap();
        }
        let build = dir.path().join("build");
        std::fs::create_dir_all(&build).unwrap();
        std::fs::copy(bin("stackctl"), build.join("stackctl")).unwrap();
        for plugin in plugins {
            std::fs::write(build.join(plugin), format!("stand-in for {plugin}")).unwrap();
        }
        Self { dir }
    }

    fn build(&self) -> PathBuf {
        self.dir.path().join("build")
    }

    fn destdir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A file under DESTDIR.
    fn dest(&self, path: &str) -> PathBuf {
        self.destdir().join(path)
    }

    /// The source tree's configuration (what this "version" ships).
    fn source_config(&self) -> PathBuf {
        self.dir.path().join("src/config/stackctl.toml")
    }

    /// `sh install.sh --build-dir BUILD --destdir ROOT ARGS`.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("sh");
        cmd.arg(self.dir.path().join("src/deploy/install.sh"))
            .arg("--build-dir")
            .arg(self.build())
            .arg("--destdir")
            .arg(self.destdir())
            .args(args)
            .env_remove("DESTDIR")
            .env_remove("CARGO_TARGET_DIR");
        cmd.output().expect("run install.sh")
    }

    /// [`Setup::run`], which must succeed; returns stdout + stderr.
    fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let said = output_text(&out);
        assert!(out.status.success(), "install.sh {args:?} failed:\n{said}");
        said
    }

    /// Every file under DESTDIR, with its permission bits.
    fn files(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        walk(&self.destdir(), &self.destdir(), &mut out);
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, meta.permissions().mode() & 0o7777);
        }
    }
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sinks this checkout builds and `install.sh` installs.
const SINKS: &[&str] = &[
    "libsink_webrtc.so",
    "libsink_recorder.so",
    "libsink_rtsp.so",
];

/// What a full install under `/usr` holds, with modes.
fn full_install() -> BTreeMap<String, u32> {
    [
        ("usr/bin/stackctl", 0o755),
        ("usr/lib/stackctl/plugins/libsink_webrtc.so", 0o644),
        ("usr/lib/stackctl/plugins/libsink_recorder.so", 0o644),
        ("usr/lib/stackctl/plugins/libsink_rtsp.so", 0o644),
        (SHIPPED_CONFIG, 0o644),
        ("usr/lib/systemd/system/stackctl.service", 0o644),
        ("usr/share/stackctl/stackctl.toml", 0o644),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m))
    .collect()
}

#[test]
fn installs_the_binary_plugins_configuration_and_unit() {
    let setup = Setup::new(&[SINKS, &["libsink_stats.so"]].concat());
    let said = setup.run_ok(&[]);
    // Exactly these files: not the example plugin that happened to be in the build directory.
    assert_eq!(setup.files(), full_install(), "{said}");
    assert_eq!(
        read(&setup.dest("usr/bin/stackctl")),
        read(&bin("stackctl"))
    );
    assert_eq!(
        read(&setup.dest("usr/lib/stackctl/plugins/libsink_webrtc.so")),
        b"stand-in for libsink_webrtc.so"
    );
    assert_eq!(
        read(&setup.dest(SHIPPED_CONFIG)),
        read(&repo().join("config/stackctl.toml"))
    );
    assert_eq!(
        read(&setup.dest("usr/lib/systemd/system/stackctl.service")),
        read(&repo().join("deploy/stackctl.service"))
    );
    // DESTDIR means packaging: the running system's systemd is not touched.
    assert!(said.contains("systemctl not run"), "{said}");

    // The installed binary runs, and reads the installed configuration.
    let out = Command::new(setup.dest("usr/bin/stackctl"))
        .args(["config", "--config"])
        .arg(setup.dest(SHIPPED_CONFIG))
        .output()
        .expect("run the installed stackctl");
    assert!(out.status.success(), "{}", output_text(&out));
}

#[test]
fn destdir_from_the_environment_and_a_missing_plugin_tolerated() {
    let setup = Setup::new(&["libsink_webrtc.so", "libsink_rtsp.so"]);
    let out = Command::new("sh")
        .arg(setup.dir.path().join("src/deploy/install.sh"))
        .arg("--build-dir")
        .arg(setup.build())
        .env("DESTDIR", setup.destdir())
        .output()
        .expect("run install.sh");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("libsink_recorder.so"),
        "{stderr}"
    );
    assert!(stderr.contains("-p sink-recorder"), "{stderr}");
    let mut expected = full_install();
    expected.remove("usr/lib/stackctl/plugins/libsink_recorder.so");
    assert_eq!(setup.files(), expected, "{text}");
}

#[test]
fn no_binary_no_install() {
    let setup = Setup::new(SINKS);
    std::fs::remove_file(setup.build().join("stackctl")).unwrap();
    let out = setup.run(&[]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("stackctl not found"),
        "{}",
        output_text(&out)
    );
    assert!(setup.files().is_empty(), "{:?}", setup.files());
}

#[test]
fn an_edited_configuration_is_kept_and_the_new_default_written_beside_it() {
    let setup = Setup::new(SINKS);
    setup.run_ok(&[]);
    let conf = setup.dest(SHIPPED_CONFIG);

    // Reinstalling over an untouched configuration changes nothing.
    let said = setup.run_ok(&[]);
    assert!(said.contains("up to date"), "{said}");
    assert!(!setup.dest(NEW_CONFIG).exists());

    let mut edited = read(&conf);
    edited.extend_from_slice(b"\n# the operator's note\n");
    std::fs::write(&conf, &edited).unwrap();
    let said = setup.run_ok(&[]);
    assert_eq!(
        read(&conf),
        edited,
        "the edited configuration was overwritten"
    );
    assert_eq!(
        read(&setup.dest(NEW_CONFIG)),
        read(&setup.source_config()),
        "{said}"
    );
    assert!(
        said.contains("kept your edited") && said.contains(".new"),
        "{said}"
    );

    // A new version whose default changed: still kept, the .new is the newer default.
    let mut newer = read(&setup.source_config());
    newer.extend_from_slice(b"\n# a newer default\n");
    std::fs::write(setup.source_config(), &newer).unwrap();
    setup.run_ok(&[]);
    assert_eq!(read(&conf), edited);
    assert_eq!(read(&setup.dest(NEW_CONFIG)), newer);
}

#[test]
fn an_unedited_configuration_is_upgraded() {
    let setup = Setup::new(SINKS);
    setup.run_ok(&[]);
    let mut newer = read(&setup.source_config());
    newer.extend_from_slice(b"\n# a newer default\n");
    std::fs::write(setup.source_config(), &newer).unwrap();
    let said = setup.run_ok(&[]);
    assert_eq!(read(&setup.dest(SHIPPED_CONFIG)), newer, "{said}");
    assert!(said.contains("updated"), "{said}");
    assert!(!setup.dest(NEW_CONFIG).exists());
    assert_eq!(read(&setup.dest("usr/share/stackctl/stackctl.toml")), newer);
}

#[test]
fn uninstall_removes_everything_but_an_edited_configuration() {
    let setup = Setup::new(SINKS);
    setup.run_ok(&[]);
    // The operator's own plugin, dropped next to ours: not ours to remove.
    let theirs = setup.dest("usr/lib/stackctl/plugins/libsink_mine.so");
    std::fs::write(&theirs, "mine").unwrap();
    let conf = setup.dest(SHIPPED_CONFIG);
    let mut edited = read(&conf);
    edited.extend_from_slice(b"\n# the operator's note\n");
    std::fs::write(&conf, &edited).unwrap();
    setup.run_ok(&[]); // writes the .new

    let said = setup.run_ok(&["--uninstall"]);
    let left: Vec<String> = setup.files().into_keys().collect();
    assert_eq!(
        left,
        [
            SHIPPED_CONFIG.to_owned(),
            "usr/lib/stackctl/plugins/libsink_mine.so".to_owned()
        ],
        "{said}"
    );
    assert_eq!(read(&conf), edited);
    assert!(said.contains("kept /etc/stackctl/stackctl.toml"), "{said}");

    // Without edits, nothing at all is left, directories included.
    let setup = Setup::new(SINKS);
    setup.run_ok(&[]);
    setup.run_ok(&["--uninstall"]);
    assert!(setup.files().is_empty(), "{:?}", setup.files());
    for dir in ["etc/stackctl", "usr/lib/stackctl", "usr/share/stackctl"] {
        assert!(!setup.dest(dir).exists(), "{dir} is left");
    }
}

#[test]
fn another_prefix_gets_its_own_paths_in_the_unit() {
    let setup = Setup::new(SINKS);
    let said = setup.run_ok(&["--prefix", "/usr/local"]);
    let files = setup.files();
    for path in [
        "usr/local/bin/stackctl",
        "usr/local/lib/stackctl/plugins/libsink_webrtc.so",
        "usr/local/lib/systemd/system/stackctl.service",
        SHIPPED_CONFIG,
    ] {
        assert!(files.contains_key(path), "{path} missing: {files:?}");
    }
    let unit = String::from_utf8(read(
        &setup.dest("usr/local/lib/systemd/system/stackctl.service"),
    ))
    .unwrap();
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/bin/stackctl up --config /etc/stackctl/stackctl.toml\n"
        ),
        "{unit}"
    );
    // stackctl's own search path does not include it: the script says what to add.
    assert!(
        said.contains("plugin_dirs = [\"/usr/local/lib/stackctl/plugins\"]"),
        "{said}"
    );
}

#[test]
fn help_and_bad_options() {
    let setup = Setup::new(&[]);
    let out = setup.run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--prefix",
        "--destdir",
        "--build-dir",
        "--uninstall",
        "--no-systemd",
    ] {
        assert!(help.contains(option), "{option} not in:\n{help}");
    }
    let out = setup.run(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option: --frobnicate"));
    let out = setup.run(&["--prefix"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(setup.files().is_empty());
}

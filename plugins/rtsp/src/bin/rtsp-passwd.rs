//! Prints a `users` entry for `[plugins.rtsp]`: the name and its password hash (see the
//! `auth` module of `sink-rtsp` for the format).
//!
//! ```sh
//! rtsp-passwd alice                    # reads the password from standard input
//! rtsp-passwd --realm home alice       # for a `realm` other than the default
//! ```

use std::io::BufRead;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut realm = "stackctl".to_owned();
    let mut name = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--realm" => match args.next() {
                Some(r) => realm = r,
                None => return usage("--realm needs a value"),
            },
            "-h" | "--help" => return usage(""),
            a if a.starts_with('-') => return usage(&format!("unknown option {a}")),
            a => name = Some(a.to_owned()),
        }
    }
    let Some(name) = name else {
        return usage("name the user");
    };
    if name.is_empty() || name.contains(':') || name.contains('"') {
        return usage("a user name has no ':' or '\"'");
    }
    eprint!("password for {name} (realm {realm}): ");
    let mut password = String::new();
    if std::io::stdin().lock().read_line(&mut password).is_err() {
        return usage("cannot read the password");
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return usage("an empty password");
    }
    eprintln!();
    println!(
        "{{ name = \"{name}\", password_hash = \"{}\" }}",
        sink_rtsp::auth::password_hash(&name, &realm, password)
    );
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    if !why.is_empty() {
        eprintln!("rtsp-passwd: {why}");
    }
    eprintln!(
        "usage: rtsp-passwd [--realm REALM] NAME   (the password is read from standard input)"
    );
    if why.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

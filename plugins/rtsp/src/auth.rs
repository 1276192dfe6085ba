//! Basic and Digest authentication (RFC 2617, as RTSP 1.0 clients implement it).
//!
//! # The password hash
//!
//! A user's `password_hash` is `md5:` followed by the 32 lowercase hex digits of
//! `MD5(name ":" realm ":" password)`: the "HA1" of Digest authentication, the third field of
//! an Apache `htdigest` file. Digest needs exactly this value on the server (RTSP clients
//! only speak Digest with MD5), and Basic is checked against it too. Produce one with
//!
//! ```sh
//! cargo run -p sink-rtsp --bin rtsp-passwd -- alice          # asks for the password
//! printf '%s' 'alice:stackctl:secret' | md5sum                # the same, by hand
//! ```
//!
//! The realm (`realm`, default `stackctl`) is part of the hash: changing it invalidates every
//! hash. Whoever reads the hash can answer Digest challenges for that user, so the
//! configuration file is a secret like a password file.
//!
//! # Nonces
//!
//! Each connection gets its own random nonce (as mediamtx does): a response computed for one
//! connection is worthless on another. A nonce from another connection is answered as
//! `stale`, so a client retries without asking its user again.

use std::fmt::Write as _;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::Deserialize;

use crate::config::User;

/// An authentication scheme offered to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// RFC 2617 Digest with MD5: the password never crosses the network.
    Digest,
    /// Basic: the password crosses in clear (base64); for clients without Digest.
    Basic,
}

/// `md5:` + hex MD5 of `name:realm:password`: a `users` entry's `password_hash`.
pub fn password_hash(name: &str, realm: &str, password: &str) -> String {
    format!("md5:{}", hex(&md5_of(&[name, ":", realm, ":", password])))
}

/// The 16 bytes of a `password_hash`, or why it is not one.
pub fn parse_password_hash(text: &str) -> Result<[u8; 16], String> {
    let why = || {
        format!(
            "{}: expected \"md5:\" and 32 hex digits (MD5 of \"name:realm:password\"; `rtsp-passwd NAME` prints one)",
            redact(text)
        )
    };
    let digits = text.strip_prefix("md5:").ok_or_else(why)?;
    if digits.len() != 32 {
        return Err(why());
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| why())?;
    }
    Ok(out)
}

/// What a bad hash looks like in an error: its shape, never a password typed by mistake.
fn redact(text: &str) -> String {
    if text.starts_with("md5:") {
        format!("{:?}", text)
    } else {
        format!("a value of {} characters", text.chars().count())
    }
}

/// The users and schemes a server checks requests against.
#[derive(Debug, Clone)]
pub struct Auth {
    users: Vec<(String, [u8; 16])>,
    realm: String,
    methods: Vec<AuthMethod>,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header: the client has not tried yet.
    #[error("no credentials")]
    Missing,
    /// A scheme not offered, or a header that does not parse.
    #[error("malformed or unoffered credentials")]
    Malformed,
    /// A Digest response for another connection's nonce.
    #[error("stale nonce")]
    Stale,
    /// An unknown user or a wrong password.
    #[error("wrong user name or password")]
    Denied,
}

impl Auth {
    /// `None` when there are no users (anyone may watch). The users were validated with the
    /// configuration; an entry whose hash does not parse is left out.
    pub fn new(users: &[User], realm: &str, methods: &[AuthMethod]) -> Option<Self> {
        if users.is_empty() {
            return None;
        }
        Some(Self {
            users: users
                .iter()
                .filter_map(|u| Some((u.name.clone(), parse_password_hash(&u.password_hash).ok()?)))
                .collect(),
            realm: realm.to_owned(),
            methods: methods.to_vec(),
        })
    }

    /// The `WWW-Authenticate` values of a 401, strongest first.
    pub fn challenges(&self, nonce: &str, stale: bool) -> Vec<String> {
        self.methods
            .iter()
            .map(|m| match m {
                AuthMethod::Digest => format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5{}",
                    self.realm,
                    if stale { ", stale=TRUE" } else { "" }
                ),
                AuthMethod::Basic => format!("Basic realm=\"{}\"", self.realm),
            })
            .collect()
    }

    /// Checks a request's `Authorization` header. `method` is the request's method name,
    /// `request_uri` its URI as sent, `nonce` the connection's. Returns the user's name.
    pub fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        request_uri: &str,
        nonce: &str,
    ) -> Result<String, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") && self.methods.contains(&AuthMethod::Basic) {
            self.check_basic(rest.trim())
        } else if scheme.eq_ignore_ascii_case("digest")
            && self.methods.contains(&AuthMethod::Digest)
        {
            self.check_digest(rest, method, request_uri, nonce)
        } else {
            Err(AuthError::Malformed)
        }
    }

    fn ha1(&self, name: &str) -> Option<&[u8; 16]> {
        self.users.iter().find(|(n, _)| n == name).map(|(_, h)| h)
    }

    fn check_basic(&self, token: &str) -> Result<String, AuthError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| AuthError::Malformed)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (name, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
        let want = self.ha1(name).ok_or(AuthError::Denied)?;
        let got = md5_of(&[name, ":", &self.realm, ":", password]);
        if constant_time_eq(&got, want) {
            Ok(name.to_owned())
        } else {
            Err(AuthError::Denied)
        }
    }

    fn check_digest(
        &self,
        params: &str,
        method: &str,
        request_uri: &str,
        nonce: &str,
    ) -> Result<String, AuthError> {
        let params = parse_params(params).ok_or(AuthError::Malformed)?;
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        };
        let (Some(name), Some(their_nonce), Some(uri), Some(response)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return Err(AuthError::Malformed);
        };
        if get("realm").is_some_and(|r| r != self.realm)
            || get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5"))
            || !same_resource(uri, request_uri)
        {
            return Err(AuthError::Denied);
        }
        if their_nonce != nonce {
            return Err(AuthError::Stale);
        }
        let ha1 = hex(self.ha1(name).ok_or(AuthError::Denied)?);
        let ha2 = hex(&md5_of(&[method, ":", uri]));
        let want = match get("qop") {
            None => md5_of(&[&ha1, ":", nonce, ":", &ha2]),
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return Err(AuthError::Malformed);
                };
                md5_of(&[&ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", &ha2])
            }
            Some(_) => return Err(AuthError::Malformed),
        };
        if constant_time_eq(
            hex(&want).as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            Ok(name.to_owned())
        } else {
            Err(AuthError::Denied)
        }
    }
}

/// A fresh random nonce: 32 hex digits.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes);
    hex(&bytes)
}

/// Whether a Digest `uri` names the request's resource: the same text, or the same path
/// (clients differ in how much of the URL they put there).
fn same_resource(digest_uri: &str, request_uri: &str) -> bool {
    fn path(uri: &str) -> &str {
        let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        path.trim_end_matches('/')
    }
    digest_uri == request_uri || path(digest_uri) == path(request_uri)
}

/// `key=value` and `key="quoted value"` pairs separated by commas; `None` if malformed.
fn parse_params(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(|c: char| c == ',' || c.is_whitespace()) {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &quoted[end? + 1..];
            value = v;
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((key.to_owned(), value));
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            return None;
        }
        if out.len() > 32 {
            return None;
        }
    }
    Some(out)
}

fn md5_of(parts: &[&str]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Compares without leaking where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(methods: &[AuthMethod]) -> Auth {
        let users = [User {
            name: "alice".into(),
            password_hash: password_hash("alice", "stackctl", "secret"),
        }];
        Auth::new(&users, "stackctl", methods).unwrap()
    }

    #[test]
    fn the_hash_is_htdigest_ha1() {
        // printf '%s' 'alice:stackctl:secret' | md5sum
        assert_eq!(
            password_hash("alice", "stackctl", "secret"),
            format!("md5:{}", hex(&md5_of(&["alice:stackctl:secret"])))
        );
        // RFC 2617 §3.5's example: Mufasa:testrealm@host.com:Circle Of Life.
        assert_eq!(
            password_hash("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "md5:939e7578ed9e3c518a452acee763bce9"
        );
        assert!(parse_password_hash("md5:939e7578ed9e3c518a452acee763bce9").is_ok());
        for bad in [
            "939e7578ed9e3c518a452acee763bce9",
            "md5:939e",
            "md5:zz9e7578ed9e3c518a452acee763bce9",
        ] {
            assert!(parse_password_hash(bad).is_err(), "{bad}");
        }
        let e = parse_password_hash("hunter2").unwrap_err();
        assert!(
            !e.contains("hunter2"),
            "a mistyped password is not echoed: {e}"
        );
        assert!(Auth::new(&[], "r", &[AuthMethod::Basic]).is_none());
    }

    #[test]
    fn basic() {
        let a = auth(&[AuthMethod::Basic]);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let check = |h: &str| a.check(Some(h), "DESCRIBE", "rtsp://x/live", "n");
        assert_eq!(
            check(&format!("Basic {}", b64("alice:secret"))),
            Ok("alice".into())
        );
        assert_eq!(
            check(&format!("basic  {}", b64("alice:secret"))),
            Ok("alice".into())
        );
        assert_eq!(
            check(&format!("Basic {}", b64("alice:wrong"))),
            Err(AuthError::Denied)
        );
        assert_eq!(
            check(&format!("Basic {}", b64("bob:secret"))),
            Err(AuthError::Denied)
        );
        assert_eq!(
            check(&format!("Basic {}", b64("alice"))),
            Err(AuthError::Malformed)
        );
        assert_eq!(check("Basic !!!"), Err(AuthError::Malformed));
        assert_eq!(a.check(None, "DESCRIBE", "u", "n"), Err(AuthError::Missing));
        // Digest not offered here.
        assert_eq!(
            check("Digest username=\"alice\""),
            Err(AuthError::Malformed)
        );
        assert_eq!(a.challenges("n", false), ["Basic realm=\"stackctl\""]);
    }

    fn digest_header(uri: &str, nonce: &str, password: &str, qop: bool) -> String {
        let ha1 = hex(&md5_of(&["alice:stackctl:", password]));
        let ha2 = hex(&md5_of(&["DESCRIBE:", uri]));
        if qop {
            let response = hex(&md5_of(&[&ha1, ":", nonce, ":00000001:c0ffee:auth:", &ha2]));
            format!(
                "Digest username=\"alice\", realm=\"stackctl\", nonce=\"{nonce}\", uri=\"{uri}\", \
                 response=\"{response}\", qop=auth, nc=00000001, cnonce=\"c0ffee\""
            )
        } else {
            let response = hex(&md5_of(&[&ha1, ":", nonce, ":", &ha2]));
            format!(
                "Digest username=\"alice\", realm=\"stackctl\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\""
            )
        }
    }

    #[test]
    fn digest() {
        let a = auth(&[AuthMethod::Digest, AuthMethod::Basic]);
        let uri = "rtsp://127.0.0.1:8554/live";
        let check = |h: &str, req_uri: &str| a.check(Some(h), "DESCRIBE", req_uri, "abc");
        for qop in [false, true] {
            assert_eq!(
                check(&digest_header(uri, "abc", "secret", qop), uri),
                Ok("alice".into())
            );
            assert_eq!(
                check(&digest_header(uri, "abc", "wrong", qop), uri),
                Err(AuthError::Denied)
            );
            assert_eq!(
                check(&digest_header(uri, "old", "secret", qop), uri),
                Err(AuthError::Stale),
                "another connection's nonce"
            );
        }
        // The same path in another form is the same resource; another path is not.
        assert_eq!(
            check(&digest_header("/live/", "abc", "secret", false), uri),
            Ok("alice".into())
        );
        assert_eq!(
            check(
                &digest_header(uri, "abc", "secret", false),
                "rtsp://127.0.0.1:8554/other"
            ),
            Err(AuthError::Denied)
        );
        assert_eq!(
            check("Digest username=\"alice\"", uri),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            check("Digest username=\"alice", uri),
            Err(AuthError::Malformed)
        );
        assert_eq!(check("Bearer x", uri), Err(AuthError::Malformed));
        assert_eq!(
            a.challenges("abc", true),
            [
                "Digest realm=\"stackctl\", nonce=\"abc\", algorithm=MD5, stale=TRUE",
                "Basic realm=\"stackctl\""
            ]
        );
    }

    #[test]
    fn params_parse_quotes_escapes_and_bare_values() {
        assert_eq!(
            parse_params(r#"a="x, y", b=z ,c="q\"q""#).unwrap(),
            [
                ("a".into(), "x, y".into()),
                ("b".into(), "z".into()),
                ("c".into(), "q\"q".into())
            ]
        );
        assert!(parse_params("a").is_none());
        assert!(parse_params("a=\"x\" b=y").is_none());
        assert_eq!(parse_params("").unwrap(), []);
    }
}

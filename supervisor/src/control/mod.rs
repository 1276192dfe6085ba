//! The control socket: how `stackctl status | restart | stop | start | logs | down` reach the
//! running `stackctl up`.

pub mod client;
pub mod server;

//! `user-timeout`: see [`super::dead_peer`], which performs it.

use super::{dead_peer, Scenario};

pub const SCENARIO: Scenario = Scenario {
    id: "user-timeout",
    title: "unacknowledged data to a vanished peer: TCP_USER_TIMEOUT ends it, keepalive does not",
    chapter: "dead-peers.md#user-timeout",
    alone: false,
    perform: dead_peer::user_timeout,
};

//! `keepalive-dead-peer`: see [`super::dead_peer`], which performs it.

use super::{dead_peer, Scenario};

pub const SCENARIO: Scenario = Scenario {
    id: "keepalive-dead-peer",
    title: "a peer that vanishes: unnoticed without keepalive, TimedOut with it",
    chapter: "dead-peers.md#keepalive-dead-peer",
    alone: false,
    perform: dead_peer::keepalive,
};

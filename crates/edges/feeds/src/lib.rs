//! # rampart-edge-feeds
//!
//! The edge for line-oriented legacy feeds: NMEA 0183 GPS, AIS and ADS-B (SBS-1 and AVR).
//! It owns the transport, never the protocol:
//!
//! - `lines`: a sans-IO splitter from bytes to bounded lines;
//! - `decoder`: the [`FeedDecoder`] trait that each codec adapter implements;
//! - `batcher`: groups decoded reports into engine batches, so a feed of single sentences
//!   still rides one group commit per batch;
//! - `adapters`: each codec's state machine behind [`FeedDecoder`];
//! - `input`: UDP listen, TCP listen and TCP connect (with reconnect and backoff);
//! - `replay`: a recorded file, at its original pace, faster, or as fast as possible.
//!
//! Every decoder instance is per source (per UDP peer, per TCP connection), because NMEA
//! epochs, AIS fragments and ADS-B CPR pairs are stateful per sender.

pub mod adapters;
mod batcher;
mod decoder;
mod input;
mod lines;
mod replay;

pub use batcher::{Batcher, BatcherHandle};
pub use decoder::{DecoderFactory, FeedDecoder, FeedError, Peer};
pub use input::{
    DatagramGate, FeedConfig, FeedInput, run_tcp_connect, run_tcp_listener, run_udp_listener,
    run_udp_listener_gated,
};
pub use lines::{LineError, LineSplitter};
pub use replay::{ReplayOptions, ReplayStats, replay_file};

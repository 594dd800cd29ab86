//! `!AIVDM` / `!AIVDO` fragments and their sans-IO reassembly.
//!
//! [`parse_fragment`] reads the six VDM fields from a framed sentence. [`Assembler`] joins
//! multi-sentence messages. Groups are keyed by (VDM or VDO, channel, sequential message id,
//! fragment count) — the standard's key plus the own-ship flag, so an `AIVDO` never completes
//! an `AIVDM`. Fragments must arrive in order (the standard requires it); anything else is an
//! `orphan_fragment`. State is bounded: at most [`AssemblerConfig::max_pending_groups`]
//! groups (the oldest is evicted), each at most [`crate::MAX_PAYLOAD_BITS`], and a group
//! older than [`AssemblerConfig::timeout_ms`] is dropped. Pending groups live in a deque in
//! arrival order, so expiry and eviction pop the front; lookups scan it, which beats hashing
//! for the handful of groups pending in practice and stays bounded (1,000 by default) under
//! attack.

use std::collections::VecDeque;

use rampart_codec_nmea::{Frame, FrameOptions, Talker, parse_frame};
use rampart_model::Timestamp;

use crate::AisError;
use crate::bits::Payload;

/// One VDM/VDO sentence's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Talker (`AI`, `AB`, `BS`, …).
    pub talker: Talker,
    /// True for `VDO` (own ship), false for `VDM`.
    pub own: bool,
    /// Fragments in the message, 1–9.
    pub count: u8,
    /// This fragment's number, 1-based.
    pub number: u8,
    /// Sequential message id 0–9 linking fragments, if given.
    pub seq_id: Option<u8>,
    /// Radio channel (`A`, `B`, `1`, `2`), if given.
    pub channel: Option<u8>,
    /// Armored payload characters.
    pub payload: &'a str,
    /// Fill bits after the payload, 0–5.
    pub fill_bits: u8,
}

fn bad(
    kind: &'static str,
    index: usize,
    name: &'static str,
    value: &str,
    problem: &'static str,
) -> AisError {
    AisError::BadField {
        sentence: kind,
        index,
        name,
        value: value.to_owned(),
        problem,
    }
}

fn digit(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [c] if c.is_ascii_digit() => Some(c - b'0'),
        _ => None,
    }
}

/// Reads the VDM/VDO fields of a framed sentence.
pub fn parse_fragment<'a>(frame: &Frame<'a>) -> Result<Fragment<'a>, AisError> {
    let (kind, own) = match frame.kind {
        "VDM" => ("VDM", false),
        "VDO" => ("VDO", true),
        other => return Err(AisError::NotAis(other.to_owned())),
    };
    let mut f = [""; 6];
    let mut n = 0;
    for part in frame.fields() {
        match f.get_mut(n) {
            Some(slot) => *slot = part,
            None => {
                return Err(bad(
                    kind,
                    7,
                    "extra field",
                    part,
                    "is more than VDM's six fields",
                ));
            }
        }
        n += 1;
    }
    if n < 6 {
        return Err(AisError::Frame(rampart_codec_nmea::NmeaError::Truncated {
            sentence: kind,
            got: n,
            need: 6,
        }));
    }
    let [count_s, number_s, seq_s, chan_s, payload, fill_s] = f;
    let count = digit(count_s)
        .filter(|&c| c >= 1)
        .ok_or_else(|| bad(kind, 1, "fragment count", count_s, "is not a digit 1-9"))?;
    let number = digit(number_s)
        .filter(|&c| c >= 1 && c <= count)
        .ok_or_else(|| {
            bad(
                kind,
                2,
                "fragment number",
                number_s,
                "is not within 1..count",
            )
        })?;
    let seq_id = match seq_s {
        "" => None,
        s => Some(digit(s).ok_or_else(|| bad(kind, 3, "sequence id", s, "is not a digit 0-9"))?),
    };
    let channel = match chan_s.as_bytes() {
        [] => None,
        [c @ (b'A' | b'B' | b'1' | b'2')] => Some(*c),
        _ => return Err(bad(kind, 4, "channel", chan_s, "is not A, B, 1 or 2")),
    };
    if payload.is_empty() {
        return Err(bad(kind, 5, "payload", payload, "is empty"));
    }
    let fill_bits = digit(fill_s)
        .filter(|&v| v <= 5)
        .ok_or_else(|| bad(kind, 6, "fill bits", fill_s, "is not a digit 0-5"))?;
    Ok(Fragment {
        talker: frame.talker,
        own,
        count,
        number,
        seq_id,
        channel,
        payload,
        fill_bits,
    })
}

/// Reassembly bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssemblerConfig {
    /// Framing options for [`Assembler::feed`].
    pub frame: FrameOptions,
    /// A group whose first fragment is this old is dropped (default 5 s).
    pub timeout_ms: i64,
    /// Most incomplete messages held at once; the oldest is evicted (default 1,000).
    pub max_pending_groups: usize,
}

impl Default for AssemblerConfig {
    fn default() -> Self {
        AssemblerConfig {
            frame: FrameOptions::default(),
            timeout_ms: 5_000,
            max_pending_groups: 1_000,
        }
    }
}

/// What the assembler dropped without an error of the current call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssemblerCounters {
    /// Complete messages produced.
    pub messages: u64,
    /// Incomplete groups dropped after the timeout.
    pub expired: u64,
    /// Incomplete groups evicted because the pending bound was reached.
    pub evicted: u64,
    /// Incomplete groups replaced by a new fragment 1 with the same key.
    pub replaced: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct GroupKey {
    own: bool,
    channel: Option<u8>,
    seq_id: Option<u8>,
    count: u8,
}

struct Group {
    key: GroupKey,
    started: Timestamp,
    next: u8,
    payload: Payload,
}

/// Sans-IO reassembler for one feed: push fragments (with `now`), get complete payloads.
pub struct Assembler {
    config: AssemblerConfig,
    pending: VecDeque<Group>,
    counters: AssemblerCounters,
}

impl Assembler {
    /// An empty assembler.
    pub fn new(config: AssemblerConfig) -> Self {
        Assembler {
            config,
            pending: VecDeque::new(),
            counters: AssemblerCounters::default(),
        }
    }

    /// Counters of silent drops and completed messages.
    pub fn counters(&self) -> AssemblerCounters {
        self.counters
    }

    /// Incomplete messages currently held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Frames one line and pushes its fragment.
    pub fn feed(&mut self, line: &[u8], now: Timestamp) -> Result<Option<Payload>, AisError> {
        let frame = parse_frame(line, &self.config.frame)?;
        let fragment = parse_fragment(&frame)?;
        self.push(&fragment, now)
    }

    /// Drops groups older than the timeout; returns how many.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let mut n = 0;
        while let Some(g) = self.pending.front() {
            if now.0.saturating_sub(g.started.0) < self.config.timeout_ms {
                break;
            }
            self.pending.pop_front();
            n += 1;
        }
        self.counters.expired += n as u64;
        n
    }

    /// Pushes one fragment; returns the payload when its message is complete.
    pub fn push(&mut self, f: &Fragment<'_>, now: Timestamp) -> Result<Option<Payload>, AisError> {
        if f.count == 1 {
            // The common case: no state at all.
            let p = Payload::from_armored(f.payload, f.fill_bits)?;
            self.counters.messages += 1;
            return Ok(Some(p));
        }
        self.expire(now);
        let key = GroupKey {
            own: f.own,
            channel: f.channel,
            seq_id: f.seq_id,
            count: f.count,
        };
        let found = self.pending.iter().position(|g| g.key == key);
        if f.number == 1 {
            if let Some(i) = found {
                self.pending.remove(i);
                self.counters.replaced += 1;
            }
            let mut payload = Payload::default();
            payload.append(f.payload)?;
            while self.pending.len() >= self.config.max_pending_groups.max(1) {
                self.pending.pop_front();
                self.counters.evicted += 1;
            }
            self.pending.push_back(Group {
                key,
                started: now,
                next: 2,
                payload,
            });
            return Ok(None);
        }
        let orphan = |why: String| AisError::OrphanFragment {
            number: f.number,
            count: f.count,
            channel: f.channel.map_or('-', char::from),
            seq_id: f.seq_id.map_or('-', |d| char::from(b'0' + d)),
            why,
        };
        let Some(i) = found else {
            return Err(orphan(
                "no pending fragment 1 for this group (never seen, timed out or evicted)".into(),
            ));
        };
        let Some(g) = self.pending.get_mut(i) else {
            return Err(orphan("pending group vanished".into()));
        };
        if g.next != f.number {
            let why = format!("expected fragment {}", g.next);
            self.pending.remove(i);
            return Err(orphan(why));
        }
        if let Err(e) = g.payload.append(f.payload) {
            self.pending.remove(i);
            return Err(e);
        }
        g.next += 1;
        if f.number < f.count {
            return Ok(None);
        }
        let Some(mut g) = self.pending.remove(i) else {
            return Err(orphan("pending group vanished".into()));
        };
        g.payload.finish(f.fill_bits);
        self.counters.messages += 1;
        Ok(Some(g.payload))
    }
}

//! The protocols the server speaks ([`Proto`], one per WebSocket path), the profile that
//! picks which one answers at `/ws` ([`Profile`]), and the number a generated event carries
//! in its room ([`Seq`]).

use std::fmt;
use std::str::FromStr;

/// Every protocol the server speaks, one per WebSocket path (see [`Proto::from_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// `seeds/kite.md` at `/kite/ws`.
    Kite,
    /// `seeds/kecs.md` at `/kecs/ws`.
    Kecs,
    /// `seeds/newloom.rst`, chat endpoint, at `/newloom/ws/chat/`.
    NewloomChat,
    /// `seeds/newloom.rst`, streams endpoint, at `/newloom/ws/streams/`.
    NewloomStreams,
    /// `seeds/hexabase.md` at `/hexabase/ws`.
    Hexabase,
    /// `seeds/covetpy.md` at `/covetpy/ws`.
    Covetpy,
    /// RFC 6455 echo for the Autobahn cases, at `/conformance/ws`: no auth, no limits but size.
    Conformance,
}

impl Proto {
    /// Number of variants, for per-protocol counter arrays.
    pub const COUNT: usize = 7;
    /// Every variant, in index order.
    pub const ALL: [Proto; Proto::COUNT] = [
        Proto::Kite,
        Proto::Kecs,
        Proto::NewloomChat,
        Proto::NewloomStreams,
        Proto::Hexabase,
        Proto::Covetpy,
        Proto::Conformance,
    ];

    /// Position in [`Proto::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The short name used in metrics labels and room keys.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Kite => "kite",
            Proto::Kecs => "kecs",
            Proto::NewloomChat => "newloom-chat",
            Proto::NewloomStreams => "newloom-streams",
            Proto::Hexabase => "hexabase",
            Proto::Covetpy => "covetpy",
            Proto::Conformance => "conformance",
        }
    }

    /// The dedicated path of this protocol.
    pub fn path(self) -> &'static str {
        match self {
            Proto::Kite => "/kite/ws",
            Proto::Kecs => "/kecs/ws",
            Proto::NewloomChat => "/newloom/ws/chat/",
            Proto::NewloomStreams => "/newloom/ws/streams/",
            Proto::Hexabase => "/hexabase/ws",
            Proto::Covetpy => "/covetpy/ws",
            Proto::Conformance => "/conformance/ws",
        }
    }

    /// The protocol served at `path`; `/ws` (and newloom's own `/ws/chat/`,
    /// `/ws/streams/`) answer for the server's main profile.
    pub fn from_path(path: &str, main: Profile) -> Option<Proto> {
        if path == "/ws" {
            return Some(main.proto());
        }
        // Autobahn's fuzzing client asks for `/`.
        if path == "/" && main == Profile::Conformance {
            return Some(Proto::Conformance);
        }
        if main == Profile::Newloom {
            match path {
                "/ws/chat/" | "/ws/chat" => return Some(Proto::NewloomChat),
                "/ws/streams/" | "/ws/streams" => return Some(Proto::NewloomStreams),
                _ => {}
            }
        }
        let trimmed = path.trim_end_matches('/');
        Proto::ALL
            .into_iter()
            .find(|p| p.path().trim_end_matches('/') == trimmed)
    }

    /// Largest message this protocol's document allows (what `--max-message-size`
    /// overrides). Documents that state no limit get 1 MiB.
    pub fn max_message_size(self) -> usize {
        match self {
            Proto::Kite => 512 * 1024,
            Proto::Conformance => 16 * 1024 * 1024,
            _ => 1024 * 1024,
        }
    }
}

/// The protocol answering at `/ws` (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Kite.
    #[default]
    Kite,
    /// KECS.
    Kecs,
    /// newloom: `/ws` is the chat endpoint; `/ws/chat/` and `/ws/streams/` also answer.
    Newloom,
    /// Hexabase.
    Hexabase,
    /// CovetPy.
    Covetpy,
    /// The RFC 6455 echo route for Autobahn.
    Conformance,
}

impl Profile {
    /// The protocol `/ws` speaks under this profile.
    pub fn proto(self) -> Proto {
        match self {
            Profile::Kite => Proto::Kite,
            Profile::Kecs => Proto::Kecs,
            Profile::Newloom => Proto::NewloomChat,
            Profile::Hexabase => Proto::Hexabase,
            Profile::Covetpy => Proto::Covetpy,
            Profile::Conformance => Proto::Conformance,
        }
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "kite" => Profile::Kite,
            "kecs" => Profile::Kecs,
            "newloom" => Profile::Newloom,
            "hexabase" => Profile::Hexabase,
            "covetpy" => Profile::Covetpy,
            "conformance" => Profile::Conformance,
            other => {
                return Err(format!(
                    "unknown profile '{other}' (available: kite, kecs, newloom, hexabase, \
                     covetpy, conformance)"
                ))
            }
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Kite => "kite",
            Profile::Kecs => "kecs",
            Profile::Newloom => "newloom",
            Profile::Hexabase => "hexabase",
            Profile::Covetpy => "covetpy",
            Profile::Conformance => "conformance",
        })
    }
}

/// A generated frame's number in its room, and whether the frame shows it: `seq` is a
/// reference-server extension, left out under `--strict-doc` (the number still drives
/// what a generator makes, e.g. newloom's every-20th stream error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seq {
    /// The room's sequence number, from 1.
    pub n: u64,
    /// Whether the frame carries it.
    pub shown: bool,
}

impl Seq {
    /// A number the frame carries.
    #[cfg(test)]
    pub fn shown(n: u64) -> Seq {
        Seq { n, shown: true }
    }

    /// The `seq` field to serialize (`None`: leave it out).
    pub fn field(self) -> Option<u64> {
        self.shown.then_some(self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(Proto::from_path("/ws", Profile::Kite), Some(Proto::Kite));
        assert_eq!(
            Proto::from_path("/newloom/ws/chat/", Profile::Kite),
            Some(Proto::NewloomChat)
        );
        assert_eq!(
            Proto::from_path("/ws/streams/", Profile::Newloom),
            Some(Proto::NewloomStreams)
        );
        assert_eq!(Proto::from_path("/nope", Profile::Kite), None);
    }
}

//! Pattern walks: a `pattern` compiled to a DFA runs byte by byte, and one connection keeps
//! its last walk per pattern so the next string resumes where the two part.

use regex_automata::dfa::{dense, Automaton};
use regex_automata::util::primitives::StateID;
use regex_automata::{Anchored, Input};

/// Strings no longer than this have their pattern walks kept for the next string.
pub(super) const WALK_KEPT: usize = 256;

/// Pattern walks by key; few (the patterns one connection's frames meet), so a list beats
/// a hash.
#[derive(Debug, Default)]
pub(super) struct Walks(Vec<(u64, Walk)>);

/// Patterns a [`super::recent::Recent`] keeps walks for; any more are walked afresh.
const RECENT_PATTERNS: usize = 32;

impl Walks {
    pub(super) fn walk(&mut self, key: u64) -> Option<&mut Walk> {
        match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => Some(&mut self.0[i].1),
            None if self.0.len() < RECENT_PATTERNS => {
                self.0.push((key, Walk::default()));
                self.0.last_mut().map(|(_, w)| w)
            }
            None => None,
        }
    }
}

/// One pattern's last walk: the string, the state before each of its bytes, and where the
/// walk stopped early (the byte index and the answer), if it did.
#[derive(Debug, Default)]
pub(super) struct Walk {
    text: Vec<u8>,
    states: Vec<StateID>,
    stopped: Option<(usize, bool)>,
}

/// [`is_match`] for an anchored pattern, resuming `last` where `s` parts from its string,
/// and leaving this walk in it. The walk from a state over the same bytes is the same walk,
/// so the answer is the one a fresh walk gives.
pub(super) fn walk_resumed(dfa: &dense::DFA<Vec<u32>>, s: &str, last: &mut Walk) -> bool {
    let b = s.as_bytes();
    let shared = last.text.iter().zip(b).take_while(|(x, y)| x == y).count();
    if let Some((at, answer)) = last.stopped {
        // Stopped at a byte both strings have: the same stop.
        if at < shared {
            return answer;
        }
    }
    let mut from = shared.min(last.states.len().saturating_sub(1));
    if last.states.is_empty() {
        let input = Input::new(s).anchored(Anchored::Yes);
        let Ok(start) = dfa.start_state_forward(&input) else {
            return is_match(dfa, true, s);
        };
        last.states.push(start);
        from = 0;
    }
    last.states.truncate(from + 1);
    last.text.clear();
    last.text.extend_from_slice(b);
    last.stopped = None;
    let mut state = last.states[from];
    for (i, &byte) in b.iter().enumerate().skip(from) {
        state = dfa.next_state(state, byte);
        if dfa.is_special_state(state) {
            let stop = if dfa.is_match_state(state) {
                Some(true)
            } else if dfa.is_dead_state(state) || dfa.is_quit_state(state) {
                Some(false)
            } else {
                None
            };
            if let Some(answer) = stop {
                last.stopped = Some((i, answer));
                return answer;
            }
        }
        last.states.push(state);
    }
    dfa.is_match_state(dfa.next_eoi_state(state))
}

/// `is_match`, as the validator asks it: somewhere in `s`, stopping at the first match.
pub(super) fn is_match(dfa: &dense::DFA<Vec<u32>>, anchored: bool, s: &str) -> bool {
    // A pattern every match of which starts at the start (`^…`, not multi-line): walk the
    // DFA from there byte by byte, which beats the general search on short strings.
    if anchored {
        let input = Input::new(s).anchored(Anchored::Yes);
        if let Ok(mut state) = dfa.start_state_forward(&input) {
            for &b in s.as_bytes() {
                state = dfa.next_state(state, b);
                if dfa.is_special_state(state) {
                    if dfa.is_match_state(state) {
                        return true;
                    }
                    if dfa.is_dead_state(state) || dfa.is_quit_state(state) {
                        return false;
                    }
                }
            }
            return dfa.is_match_state(dfa.next_eoi_state(state));
        }
    }
    let input = Input::new(s).earliest(true);
    matches!(dfa.try_search_fwd(&input), Ok(Some(_)))
}

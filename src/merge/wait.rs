//! `squall merge --wait`: waiting for the shards' results to be finished before merging,
//! for a merge started beside the shards (a Kubernetes merge Job) rather than after them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::{self, Status};

/// How often the inputs are looked at again while some are not finished.
const POLL: Duration = Duration::from_secs(1);
/// How often the wait says what it still waits for.
const SAY_EVERY: Duration = Duration::from_secs(30);

/// Waits until every input's results.json exists with a final status (not `running`), or
/// until `within` has passed; returns the inputs still unfinished then (the merge that
/// follows says what is wrong with each). `say` hears what is waited for, now and then.
pub fn until_finished(
    inputs: &[PathBuf],
    within: Duration,
    mut say: impl FnMut(&str),
) -> Vec<PathBuf> {
    let start = Instant::now();
    let mut said = None::<Instant>;
    loop {
        let pending: Vec<PathBuf> = inputs.iter().filter(|p| !finished(p)).cloned().collect();
        if pending.is_empty() || start.elapsed() >= within {
            return pending;
        }
        if said.is_none_or(|t| t.elapsed() >= SAY_EVERY) {
            let names: Vec<String> = pending.iter().map(|p| p.display().to_string()).collect();
            say(&format!(
                "waiting for {} of {} shards to finish ({} left of --wait): {}",
                pending.len(),
                inputs.len(),
                humantime::format_duration(Duration::from_secs(
                    within.saturating_sub(start.elapsed()).as_secs()
                )),
                names.join(", ")
            ));
            said = Some(Instant::now());
        }
        std::thread::sleep(POLL.min(within.saturating_sub(start.elapsed())));
    }
}

/// Whether `input` (a results.json or its folder) holds results that are no longer running.
/// A file that does not read is not finished yet: results.json is replaced whole (renamed
/// into place), so one that does not parse is from elsewhere and the merge will say so.
fn finished(input: &Path) -> bool {
    let file = if input.is_dir() || input.extension().is_none_or(|e| e != "json") {
        input.join("results.json")
    } else {
        input.to_path_buf()
    };
    report::read_results(&file).is_ok_and(|r| r.status != Status::Running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_the_wait_naming_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("shard-0");
        let mut heard = Vec::new();
        let left = until_finished(
            std::slice::from_ref(&missing),
            Duration::from_millis(10),
            |s| heard.push(s.to_string()),
        );
        assert_eq!(left, [missing]);
        assert!(heard[0].contains("waiting for 1 of 1 shards"), "{heard:?}");
    }
}

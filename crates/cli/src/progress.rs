use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A spinner on stderr for a long step; indicatif draws nothing when stderr is not a terminal.
pub fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        pb.set_style(style);
    }
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// A progress bar on stderr over `len` steps; drawn only on a terminal.
pub fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style);
    }
    pb.set_message(msg.to_string());
    pb
}

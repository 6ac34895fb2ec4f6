//! `--notify`: send the run's (or explore's) summary to each webhook. A
//! notification that fails is a warning; the exit code stays the run's.

use crate::cli::{NotifyArgs, NotifyFormat};
use crate::report::notify::{self, Notification};

pub async fn send(args: &NotifyArgs, n: &Notification) {
    // An unset CI secret arrives as an empty HEATCHECK_NOTIFY_URL.
    let urls: Vec<&str> = args
        .urls
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return;
    }
    if !n.failed() && !args.notify_always {
        tracing::debug!("the run passed: no notification (--notify-always sends one)");
        return;
    }
    let format = match args.notify_format {
        NotifyFormat::Generic => notify::NotifyFormat::Generic,
        NotifyFormat::Slack => notify::NotifyFormat::Slack,
    };
    let body = n.body(format);
    let client = crate::probe::http::client();
    for url in urls {
        match notify::send(&client, url, &body).await {
            Ok(()) => tracing::info!("notified {}", notify::redact(url)),
            Err(e) => stderr_line!("warning: notification not sent: {e}"),
        }
    }
}

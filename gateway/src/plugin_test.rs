//! `joinery plugin test`: a plugin's hooks checked against cases kept as data (JSON files of
//! input and expected answer), the same way in every language, with the plugin's grants and
//! limits, and no gateway.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::plugin::Plugins;
use crate::plugin_call::{call, Hook};

/// One case: a hook called with `input`, whose answer must equal `expect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows, printed with its outcome.
    name: String,
    hook: Hook,
    /// The hook's input, as `joinery plugin call` takes it.
    #[serde(default)]
    input: Value,
    /// The answer, as `joinery plugin call` prints it.
    expect: Value,
}

/// How one case went.
#[derive(Debug)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// `None` when the answer was the expected one; else what went wrong.
    pub failure: Option<String>,
    /// The time of the call on a warm instance.
    pub(crate) took: Duration,
}

/// Runs the cases of `file` (a JSON array of `{name, hook, input, expect}`) against plugin
/// `plugin`. An unreadable or malformed file is an error; a case whose call fails or whose
/// answer differs is a failed [`Outcome`].
pub async fn run(plugins: &Plugins, plugin: &str, file: &Path) -> anyhow::Result<Vec<Outcome>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let cases: Vec<Case> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: not a list of cases {{name, hook, input, expect}}: {e}",
            file.display(),
            e.line(),
            e.column()
        )
    })?;
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let input = if case.input.is_null() {
            "{}".to_string()
        } else {
            case.input.to_string()
        };
        let outcome = match call(plugins, plugin, case.hook, &input).await {
            Ok(called) => Outcome {
                failure: (called.answer != case.expect)
                    .then(|| format!("expected {}\n     got {}", case.expect, called.answer)),
                took: Duration::from_micros(called.call_us as u64),
                name: case.name,
            },
            Err(e) => Outcome {
                failure: Some(format!("{e:#}")),
                took: Duration::ZERO,
                name: case.name,
            },
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

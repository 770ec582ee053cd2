//! The `joinery` command line.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::project;

/// Joinery: one GraphQL endpoint over many namespaced upstream APIs, serving persisted operations only.
#[derive(Debug, Parser)]
#[command(name = "joinery", version, about)]
pub struct Cli {
    /// The project's configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "JOINERY_CONFIG",
        default_value = "joinery.toml"
    )]
    pub(crate) config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate every operation against the composed schema and write the manifest.
    Build,
    /// Like `build`, without writing anything, and loads and checks every configured plugin.
    Check,
    /// Serve the operations registered in the manifest; on SIGHUP, load the project again
    /// (config, plugins, manifest) and swap it in if it loads.
    Serve {
        /// Also reload when the config, the manifest or a plugin file changes.
        #[arg(long)]
        watch: bool,
    },
    /// Build, serve, and on every change of the config, an operation, a schema file or a
    /// plugin, build again and serve the new build; a failed build prints its errors and the
    /// last good one keeps serving.
    Dev,
    /// Print the composed schema (SDL).
    Schema,
    /// Print the plan of a registered operation.
    Plan {
        /// The operation's name.
        operation: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Work with plugins without serving.
    Plugin {
        /// What to do.
        #[command(subcommand)]
        command: PluginCommand,
    },
}

/// `joinery plugin` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Make a plugin project from a template, with this gateway's WIT, ready to build.
    New {
        /// The plugin's name: lower-case letters, digits and `-`.
        name: String,
        /// The language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::plugin_new::Language,
        /// The world it implements.
        #[arg(long, value_enum)]
        world: crate::plugin_new::World,
        /// The folder to make the project in (as `<dir>/<name>`).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Call one hook of a configured plugin with input from a JSON file (`-` for stdin), with
    /// its grants and limits; prints the answer (JSON) on stdout, and the time and memory the
    /// call took on stderr.
    Call {
        /// The plugin's name (its `[plugins.<name>]` table).
        plugin: String,
        /// The hook to call.
        #[arg(long, value_enum)]
        hook: crate::plugin_call::Hook,
        /// The input: a JSON file, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
    },
    /// Check a plugin's hooks against cases: JSON files, each a list of `{name, hook, input,
    /// expect}` (`input` and `expect` as `joinery plugin call` takes and prints them).
    Test {
        /// The plugin's name (its `[plugins.<name>]` table).
        plugin: String,
        /// The case files.
        #[arg(required = true)]
        cases: Vec<PathBuf>,
    },
    /// Make a component of a core module built for `wasm32-wasi` (preview 1), as C and Zig
    /// compilers make them, with the bindings `joinery plugin new --lang c|zig` wrote.
    Componentize {
        /// The core module.
        module: PathBuf,
        /// Where to write the component.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Making a plugin project needs no project.
    if let Command::Plugin {
        command:
            PluginCommand::New {
                name,
                lang,
                world,
                dir,
            },
    } = &cli.command
    {
        let made = crate::plugin_new::create(dir, name, *lang, *world)?;
        println!(
            "made {}\nbuild it:  cd {} && {}\ntest it:   joinery plugin test {name} {}\nthen add to the gateway's joinery.toml:\n  [plugins.{name}]\n  path = \"{}\"",
            made.dir.display(),
            made.dir.display(),
            made.build,
            crate::plugin_new::CASES,
            made.dir.join(&made.component).display()
        );
        return Ok(());
    }
    if let Command::Plugin {
        command: PluginCommand::Componentize { module, out },
    } = &cli.command
    {
        let bytes = std::fs::read(module)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", module.display()))?;
        let component = crate::plugin_component::componentize(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", module.display()))?;
        std::fs::write(out, component)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
        return Ok(());
    }
    if let Command::Dev = cli.command {
        // Readable logs whatever `[log]` says: the config may not even load yet.
        crate::telemetry::init(&crate::config::LogConfig {
            format: crate::config::LogFormat::Human,
            level: "info".into(),
        });
        return crate::dev::run(&cli.config, shutdown_signal(), |_, manifest, address| {
            eprintln!(
                "serving {} operation document(s) at http://{address}/graphql",
                manifest.documents.len(),
            );
        })
        .await;
    }
    let config = if matches!(cli.command, Command::Plugin { .. }) {
        Config::load_for_plugins(&cli.config)?
    } else {
        Config::load(&cli.config)?
    };
    // Traces are for the serving gateway; the other commands only log.
    let traces = if matches!(cli.command, Command::Serve { .. }) {
        crate::telemetry::init_with_traces(&config.log, &config.traces)?
    } else {
        crate::telemetry::init(&config.log);
        None
    };
    match cli.command {
        Command::Build | Command::Check => {
            let write = matches!(cli.command, Command::Build);
            // Plugins first: a broken plugin is reported even when operations are fine.
            let (plugins, loaded) = project::load_plugins_reporting(&config)?;
            if !write {
                for l in loaded {
                    let gateway = crate::plugin::WIT_VERSION;
                    let compatible = if l.version == gateway {
                        String::new()
                    } else {
                        format!(", compatible with this gateway's {gateway}")
                    };
                    println!(
                        "plugin `{}`: ok ({}, joinery:plugin@{}{compatible})",
                        l.name, l.world, l.version
                    );
                }
            }
            let out = project::build_with(&config, &plugins, write).await?;
            for doc in &out.manifest.documents {
                let names: Vec<&str> = doc
                    .operations
                    .iter()
                    .map(|o| o.name.as_deref().unwrap_or("<anonymous>"))
                    .collect();
                println!("{}  {}  ({})", doc.hash, names.join(", "), doc.origin);
            }
            let verb = if write { "registered" } else { "checked" };
            println!("{verb} {} document(s)", out.manifest.documents.len());
            if write {
                println!(
                    "manifest written to {}",
                    config.operations.manifest.display()
                );
            }
        }
        Command::Serve { watch } => {
            let gateway = project::gateway(&config).await?;
            if let Some(address) = config.metrics.listen {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {address} for metrics: {e}"))?;
                tokio::spawn(crate::server::serve_metrics(
                    gateway.metrics.clone(),
                    listener,
                ));
            }
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
            let grace = config.server.shutdown_grace;
            let current = Arc::new(crate::server::Current::new(gateway));
            if let Some(address) = config.explorer.listen {
                let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {address} for the explorer: {e}")
                })?;
                tokio::spawn(crate::server::serve_explorer(current.clone(), listener));
            }
            let reloader = crate::reload::Reloader::new(&cli.config, config, current.clone());
            tokio::spawn(reloader.run(watch));
            crate::server::serve_current(current, listener, shutdown_signal(), grace).await?;
            if let Some(traces) = traces {
                // Exports the last spans (a blocking call into the exporter's thread).
                let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
            }
        }
        Command::Schema => print!("{}", project::supergraph(&config).await?.sdl()),
        Command::Plan { operation, json } => {
            let gateway = project::gateway(&config).await?;
            let plan = gateway
                .registry
                .find_operation(&operation)
                .ok_or_else(|| anyhow::anyhow!("no registered operation is named `{operation}`"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan.to_json())?);
            } else {
                print!("{plan}");
            }
        }
        Command::Dev
        | Command::Plugin {
            command: PluginCommand::New { .. } | PluginCommand::Componentize { .. },
        } => unreachable!("handled before the config is read"),
        Command::Plugin {
            command:
                PluginCommand::Call {
                    plugin,
                    hook,
                    input,
                },
        } => {
            let text = if input.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&input)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?
            };
            let plugins = project::load_plugins(&config)?;
            let called = crate::plugin_call::call(&plugins, &plugin, hook, &text).await?;
            println!("{}", serde_json::to_string_pretty(&called.answer)?);
            let mib = |b: usize| b as f64 / (1 << 20) as f64;
            eprintln!(
                "instantiated in {} µs; the call took {} µs; memory {:.1} MiB of its max_memory {:.1} MiB",
                called.instantiate_us,
                called.call_us,
                mib(called.memory.0),
                mib(called.memory.1)
            );
        }
        Command::Plugin {
            command: PluginCommand::Test { plugin, cases },
        } => {
            let plugins = project::load_plugins(&config)?;
            let (mut passed, mut failed) = (0, 0);
            for file in &cases {
                for outcome in crate::plugin_test::run(&plugins, &plugin, file).await? {
                    match outcome.failure {
                        None => {
                            passed += 1;
                            println!("ok    {} ({} µs)", outcome.name, outcome.took.as_micros());
                        }
                        Some(why) => {
                            failed += 1;
                            println!("FAIL  {}\n      {why}", outcome.name);
                        }
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            if failed > 0 {
                anyhow::bail!("{failed} of {} cases failed", passed + failed);
            }
        }
    }
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

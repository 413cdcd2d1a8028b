//! `gateway`: serves the API on 127.0.0.1:$PORT against DynamoDB Local, creating the
//! table on start. Stops cleanly on Ctrl-C or SIGTERM.
//!
//! Environment: `PORT` (8000), `JWT_SECRET` (`local-dev-secret`), `JWT_ISSUER` and
//! `JWT_AUDIENCE` (unset: not checked; as the template's `JwtIssuer`/`JwtAudience`),
//! `SWEEP_INTERVAL_SECONDS` (60), `SWEEP_BATCH_PER_SHARD` (250), `SWEEP_GRACE_SECONDS` (the
//! template's, for the sweep function), `RECONCILE_INTERVAL_SECONDS` (3600, as the
//! template's schedule), `RECONCILE_SETTLE_SECONDS` (the reconcile function's), and everything
//! `shared::config` reads (`DYNAMODB_ENDPOINT`, `TABLE_NAME`, `RESERVATION_TTL_SECONDS`,
//! `CURSOR_SECRET`, `LOG_FORMAT`), and `ALLOWED_ORIGINS`: the browser origins CORS allows,
//! comma-separated, in place of the template's `AllowedOrigins` default. With
//! `EVENT_BUS_NAME` (and `EVENTBRIDGE_ENDPOINT`, e.g. moto) set it also plays the
//! `publish` function's event source, putting every event on that bus. With `WEBHOOK_URL`
//! (an http:// address; `WEBHOOK_API_KEY` for its `X-Api-Key`) it delivers every event
//! there as the template's API destination would (`gateway::webhook`).

use gateway::{auth::Verifier, serve, Gateway};
use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) if !p.is_empty() => p.parse().map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        _ => 8000,
    };
    let secret = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty());
    let config = Config::from_env().map_err(|e| e.to_string())?;
    if config.store.endpoint.is_none() {
        return Err("DYNAMODB_ENDPOINT is not set: the local gateway runs against DynamoDB Local".into());
    }
    let sweep_every =
        shared::config::int_var("SWEEP_INTERVAL_SECONDS", 60, 1, 86_400).map_err(|e| e.to_string())?;
    let mut sweep = shared::jobs::SweepSettings::from_env().map_err(|e| e.to_string())?;
    let reconcile_every =
        shared::config::int_var("RECONCILE_INTERVAL_SECONDS", 3600, 1, 86_400).map_err(|e| e.to_string())?;
    let mut reconcile = shared::jobs::ReconcileSettings::from_env().map_err(|e| e.to_string())?;
    let app = config.build_app(Arc::new(SystemClock)).await.map_err(|e| e.to_string())?;
    if std::env::var_os("RECONCILE_SETTLE_SECONDS").is_none() {
        let template =
            app.local_iam().and_then(|iam| iam.template().function(shared::jobs::RECONCILE_FN).ok());
        if let Some(seconds) =
            template.and_then(|f| f.environment.get("RECONCILE_SETTLE_SECONDS")?.parse().ok())
        {
            reconcile.settle = std::time::Duration::from_secs(seconds);
        }
    }
    // The sweep's grace is the template's unless the environment says otherwise: the local
    // scheduler plays the per-hold schedules, so the sweep is the safety net here too.
    if std::env::var_os("SWEEP_GRACE_SECONDS").is_none() {
        let template = app.local_iam().and_then(|iam| iam.template().function(shared::jobs::SWEEP_FN).ok());
        if let Some(seconds) = template.and_then(|f| f.environment.get("SWEEP_GRACE_SECONDS")?.parse().ok()) {
            sweep.grace = chrono::Duration::seconds(seconds);
        }
    }
    app.store
        .ensure_tables()
        .await
        .map_err(|e| format!("cannot create the tables at {:?}: {e}", config.store.endpoint))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("port {port} is already in use; stop what uses it or set PORT to a free port")
        } else {
            format!("cannot listen on 127.0.0.1:{port}: {e}")
        }
    })?;
    let app = gateway::scheduler::with_local_scheduler(
        app,
        std::time::Duration::from_secs(sweep_every.unsigned_abs()),
        sweep,
    )
    .map_err(|e| e.to_string())?;
    gateway::scheduler::spawn_reconcile(
        &app,
        std::time::Duration::from_secs(reconcile_every.unsigned_abs()),
        reconcile,
    )
    .map_err(|e| e.to_string())?;
    // Plays the audit function's event source: the table's stream, polled locally.
    gateway::stream::spawn_stream_poller(app.clone(), gateway::stream::Platform::connect(&config).await)
        .map_err(|e| e.to_string())?;
    // Plays the publish function's event source when a bus is named (EventBridge has no
    // official emulator: moto's, in tests).
    if config.event_bus_name.is_some() {
        let bus = config.event_bus(&app, shared::jobs::PUBLISH_FN).await.map_err(|e| e.to_string())?;
        gateway::stream::spawn_publisher(
            app.clone(),
            gateway::stream::Platform::connect(&config).await,
            Arc::new(bus),
        )
        .map_err(|e| e.to_string())?;
    }
    // Plays the template's webhook (a rule on the bus with an API destination) when
    // WEBHOOK_URL is set; it needs no bus, reading the events where the publisher does.
    if let Some(webhook) = gateway::webhook::Webhook::from_env()? {
        tracing::info!(url = %webhook.url, api_key = webhook.api_key.is_some(), "delivering events to the webhook");
        gateway::webhook::spawn_webhook(&app, gateway::stream::Platform::connect(&config).await, webhook)?;
    }
    let verifier =
        Verifier::new(secret.as_deref().unwrap_or(gateway::auth::DEFAULT_SECRET))?.from_env_issuer();
    tracing::info!(port, table = %config.store.table, ttl_seconds = config.reservation_ttl_seconds, sweep_every_seconds = sweep_every, "stockhold gateway listening on http://127.0.0.1:{port}");
    let mut gateway = Gateway::new(&app, verifier).map_err(|e| e.to_string())?;
    // The template's AllowedOrigins parameter, as `make deploy PARAMS=...` would give it.
    if let Some(origins) = std::env::var("ALLOWED_ORIGINS").ok().filter(|o| !o.trim().is_empty()) {
        gateway = gateway.with_allowed_origins(origins.split(',').map(|o| o.trim().to_string()).collect());
    }
    // Requests in flight at shutdown get `SHUTDOWN_GRACE` to finish; then the gateway
    // stops anyway (every request has its function's deadline, but a client may stall).
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stopping.send(());
    };
    let limit = async move {
        let _ = stopped.await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = serve(listener, gateway, shutdown) => served.map_err(|e| e.to_string()),
        () = limit => {
            tracing::warn!(grace_seconds = SHUTDOWN_GRACE.as_secs(), "requests still running at the end of the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// How long requests in flight may take to finish once the gateway is asked to stop.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

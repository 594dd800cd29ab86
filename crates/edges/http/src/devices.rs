//! `/api/v1/devices`: registering MQTT devices, their policies, and commands to them.
//!
//! A device's secret token is returned once, at registration, and stored only as a hash.
//! Commands are queued here and delivered by the MQTT edge on `rampart/v1/{device}/cmd`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_devices::{DeviceError, Devices, NewCommand, NewDevice, Policy};
use std::sync::Arc;

use crate::AppState;
use crate::audit;
use crate::error::ApiError;

fn registry(state: &AppState) -> Result<&Arc<Devices>, ApiError> {
    state.devices.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "the device registry is not enabled on this node",
        )
    })
}

fn err(e: DeviceError) -> ApiError {
    let status = match &e {
        DeviceError::Invalid(_) => StatusCode::BAD_REQUEST,
        DeviceError::NotFound(_) => StatusCode::NOT_FOUND,
        DeviceError::Exists(_) => StatusCode::CONFLICT,
        DeviceError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
        DeviceError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{what}: {e}")))
}

/// `POST /api/v1/devices`: registers a device; the answer holds its token, shown once.
pub(crate) async fn create(
    State(state): State<AppState>,
    ext: Extensions,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    let req: NewDevice = parse(&body, "device")?;
    // The clearance must name a configured level (and no reserved group).
    req.clearance
        .resolve(&state.engine.config().labels.levels)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("clearance: {e}")))?;
    let (device, token) = reg.register(req).map_err(err)?;
    // Never the token: only what was granted.
    audit::record(
        &state,
        &audit::actor(&ext),
        "device.register",
        &device.id,
        serde_json::json!({
            "policy": device.policy, "cert_subject": device.cert_subject,
            "clearance": device.clearance,
        }),
    );
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "device": device, "token": token })),
    )
        .into_response())
}

/// `GET /api/v1/devices`.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    Ok(Json(serde_json::json!({ "devices": reg.list() })).into_response())
}

/// `GET /api/v1/devices/{id}`.
pub(crate) async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    match reg.get(&id) {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("device {id:?} not found"),
        )),
    }
}

/// `DELETE /api/v1/devices/{id}`.
pub(crate) async fn remove(
    State(state): State<AppState>,
    ext: Extensions,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    registry(&state)?.remove(&id).map_err(err)?;
    audit::record(
        &state,
        &audit::actor(&ext),
        "device.remove",
        &id,
        serde_json::json!({}),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/devices/{id}/policy`: replaces the policy (applies from the next connection).
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    ext: Extensions,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    let policy: Policy = parse(&body, "policy")?;
    let device = reg.set_policy(&id, policy).map_err(err)?;
    audit::record(
        &state,
        &audit::actor(&ext),
        "device.policy",
        &id,
        serde_json::json!({ "policy": device.policy }),
    );
    Ok(Json(device).into_response())
}

/// `POST /api/v1/devices/{id}/commands`: queues a command.
pub(crate) async fn create_command(
    State(state): State<AppState>,
    ext: Extensions,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    let req: NewCommand = parse(&body, "command")?;
    let cmd = reg.create_command(&id, req).map_err(err)?;
    audit::record(
        &state,
        &audit::actor(&ext),
        "command.create",
        &id,
        serde_json::json!({
            "command_id": cmd.id, "command": cmd.command, "args": cmd.args, "expires": cmd.expires,
        }),
    );
    Ok((StatusCode::CREATED, Json(cmd)).into_response())
}

/// `GET /api/v1/devices/{id}/commands`.
pub(crate) async fn commands(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    if reg.get(&id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("device {id:?} not found"),
        ));
    }
    Ok(Json(serde_json::json!({ "commands": reg.commands_of(&id) })).into_response())
}

/// `GET /api/v1/commands/{id}`: one command's status.
pub(crate) async fn command(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let reg = registry(&state)?;
    match reg.command(&id) {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("command {id:?} not found"),
        )),
    }
}

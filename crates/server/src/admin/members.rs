//! `/admin/users` and `/admin/teams`: who keys belong to, with limits and budgets of their own
//! that every key of theirs is held to. A change here reaches every key, so it clears every
//! replica's whole key cache.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::GatewayError;
use switchyard_core::admit::limits::Limits;
use switchyard_core::auth::keys::Member;
use switchyard_core::request::unix_ms;
use switchyard_store::MemberKind;

use super::{Call, body, double_option, not_found, open_call, store_error, usage_report};
use crate::ingress::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMember {
    id: String,
    #[serde(default)]
    name: Option<String>,
    /// Users only: the team the user belongs to.
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    models: Option<Option<Vec<String>>>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// The kind a handler serves: `/admin/users` (`TEAM = false`) or `/admin/teams`.
const fn kind<const TEAM: bool>() -> MemberKind {
    if TEAM {
        MemberKind::Team
    } else {
        MemberKind::User
    }
}

pub async fn create_one<const TEAM: bool>(
    State(app): Shared,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let call = open_call!(app, headers);
    let result = create(&call, kind::<TEAM>(), request).await;
    call.respond(StatusCode::CREATED, result)
}

pub async fn list_all<const TEAM: bool>(State(app): Shared, headers: HeaderMap) -> Response {
    let call = open_call!(app, headers);
    let result = list(&call, kind::<TEAM>()).await;
    call.respond(StatusCode::OK, result)
}

pub async fn get_one<const TEAM: bool>(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let call = open_call!(app, headers);
    let result = load(&call, kind::<TEAM>(), &id).await.map(to_json);
    call.respond(StatusCode::OK, result)
}

pub async fn update_one<const TEAM: bool>(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Body,
) -> Response {
    let call = open_call!(app, headers);
    let result = update(&call, kind::<TEAM>(), &id, request).await;
    call.respond(StatusCode::OK, result)
}

pub async fn usage_of<const TEAM: bool>(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let call = open_call!(app, headers);
    let result = usage(&call, kind::<TEAM>(), &id).await;
    call.respond(StatusCode::OK, result)
}

async fn create(call: &Call, kind: MemberKind, request: Body) -> Result<Value, GatewayError> {
    let c: CreateMember = body(call, request).await?;
    if c.id.trim().is_empty() || c.id.len() > 200 {
        return Err(GatewayError::invalid_request(
            "invalid_id",
            "id: must be 1 to 200 characters",
        ));
    }
    c.limits.validate("limits").map_err(invalid_limits)?;
    check_team(call, kind, c.team_id.as_deref()).await?;
    let now = unix_ms();
    let member = Member {
        id: c.id,
        name: c.name,
        team_id: c.team_id,
        models: c.models,
        limits: c.limits,
        metadata: if c.metadata.is_null() {
            json!({})
        } else {
            c.metadata
        },
        created_at_ms: now,
        updated_at_ms: now,
    };
    let admin = call.admin();
    admin
        .db
        .insert_member(kind, &member)
        .await
        .map_err(store_error)?;
    let action = format!("{}.create", kind.as_str());
    admin
        .audit(&call.actor, &action, &member.id, to_json(member.clone()))
        .await;
    Ok(to_json(member))
}

async fn list(call: &Call, kind: MemberKind) -> Result<Value, GatewayError> {
    let members = call
        .admin()
        .db
        .list_members(kind)
        .await
        .map_err(store_error)?;
    Ok(json!({ "data": members }))
}

async fn update(
    call: &Call,
    kind: MemberKind,
    id: &str,
    request: Body,
) -> Result<Value, GatewayError> {
    let u: UpdateMember = body(call, request).await?;
    let mut m = load(call, kind, id).await?;
    if let Some(limits) = &u.limits {
        limits.validate("limits").map_err(invalid_limits)?;
    }
    if let Some(team) = &u.team_id {
        check_team(call, kind, team.as_deref()).await?;
    }
    m.name = u.name.unwrap_or(m.name);
    m.team_id = u.team_id.unwrap_or(m.team_id);
    m.models = u.models.unwrap_or(m.models);
    m.limits = u.limits.unwrap_or(m.limits);
    m.metadata = u.metadata.unwrap_or(m.metadata);
    m.updated_at_ms = unix_ms();
    let admin = call.admin();
    if !admin
        .db
        .update_member(kind, &m)
        .await
        .map_err(store_error)?
    {
        return Err(not_found(kind.as_str(), id));
    }
    // Every key of this user or team resolves to new limits: drop them all.
    admin.invalidate("*").await;
    let action = format!("{}.update", kind.as_str());
    admin
        .audit(&call.actor, &action, id, to_json(m.clone()))
        .await;
    Ok(to_json(m))
}

async fn usage(call: &Call, kind: MemberKind, id: &str) -> Result<Value, GatewayError> {
    let m = load(call, kind, id).await?;
    usage_report(call, kind.as_str(), &m.id, &m.limits).await
}

async fn load(call: &Call, kind: MemberKind, id: &str) -> Result<Member, GatewayError> {
    call.admin()
        .db
        .member(kind, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(kind.as_str(), id))
}

async fn check_team(call: &Call, kind: MemberKind, team: Option<&str>) -> Result<(), GatewayError> {
    let Some(team) = team else { return Ok(()) };
    if kind == MemberKind::Team {
        return Err(GatewayError::invalid_request(
            "invalid_team",
            "team_id: only users belong to a team",
        ));
    }
    load(call, MemberKind::Team, team)
        .await
        .map(|_| ())
        .map_err(|_| {
            GatewayError::invalid_request(
                "unknown_owner",
                format!("no team \"{team}\": create it first with POST /admin/teams"),
            )
        })
}

fn to_json(m: Member) -> Value {
    serde_json::to_value(m).unwrap_or_default()
}

fn invalid_limits(message: String) -> GatewayError {
    GatewayError::invalid_request("invalid_limits", message)
}

//! `/admin/keys`: create (the key is in the response, once), list, get, update, revoke, rotate
//! (a new key; the old one keeps working for a grace period), and current usage.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::GatewayError;
use switchyard_core::admit::limits::Limits;
use switchyard_core::auth::keys::{KeyHasher, KeyRecord};
use switchyard_core::request::unix_ms;
use switchyard_store::{KeyFilter, MemberKind};

use super::{Call, body, double_option, not_found, open_call, store_error, usage_report};
use crate::ingress::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    /// Models and route aliases the key may call; absent: all.
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    metadata: Value,
    /// Epoch milliseconds, or…
    #[serde(default)]
    expires_at_ms: Option<i64>,
    /// …a duration from now: `30d`, `12h`.
    #[serde(default)]
    expires_in: Option<String>,
}

pub async fn create(State(app): Shared, headers: HeaderMap, request: Body) -> Response {
    let call = open_call!(app, headers);
    call.respond(StatusCode::CREATED, create_key(&call, request).await)
}

async fn create_key(call: &Call, request: Body) -> Result<Value, GatewayError> {
    let c: CreateKey = body(call, request).await?;
    c.limits.validate("limits").map_err(bad)?;
    check_owners(call, c.user_id.as_deref(), c.team_id.as_deref()).await?;
    let expires_at_ms = match (&c.expires_in, c.expires_at_ms) {
        (Some(d), _) => Some(unix_ms() + duration_ms(d)?),
        (None, at) => at,
    };
    let now = unix_ms();
    let (key, prefix) = KeyHasher::generate();
    let record = KeyRecord {
        id: new_key_id(),
        prefix,
        name: c.name,
        user_id: c.user_id,
        team_id: c.team_id,
        models: c.models,
        limits: c.limits,
        tags: c.tags,
        metadata: if c.metadata.is_null() {
            json!({})
        } else {
            c.metadata
        },
        expires_at_ms,
        revoked_at_ms: None,
        replaced_by: None,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let admin = call.admin();
    let hash = admin.hasher().hash(&key);
    admin
        .db
        .insert_key(&record, &hash)
        .await
        .map_err(store_error)?;
    // A lookup of this key may have been cached as unknown moments ago.
    admin.invalidate(&hash).await;
    admin
        .audit(&call.actor, "key.create", &record.id, audit_view(&record))
        .await;
    Ok(with_key(&record, &key))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    include_revoked: bool,
}

pub async fn list(State(app): Shared, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let call = open_call!(app, headers);
    let filter = KeyFilter {
        user_id: q.user_id,
        team_id: q.team_id,
        include_revoked: q.include_revoked,
    };
    match call.admin().db.list_keys(&filter).await {
        Ok(keys) => call.ok(StatusCode::OK, &json!({ "data": keys })),
        Err(e) => call.fail(&store_error(e)),
    }
}

pub async fn get(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let call = open_call!(app, headers);
    call.respond(StatusCode::OK, load(&call, &id).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    user_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    models: Option<Option<Vec<String>>>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    expires_at_ms: Option<Option<i64>>,
}

pub async fn update(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Body,
) -> Response {
    let call = open_call!(app, headers);
    call.respond(StatusCode::OK, update_key(&call, &id, request).await)
}

async fn update_key(call: &Call, id: &str, request: Body) -> Result<KeyRecord, GatewayError> {
    let u: UpdateKey = body(call, request).await?;
    let mut key = load(call, id).await?;
    if let Some(limits) = &u.limits {
        limits.validate("limits").map_err(bad)?;
    }
    let user = u.user_id.clone().unwrap_or(key.user_id.clone());
    let team = u.team_id.clone().unwrap_or(key.team_id.clone());
    check_owners(call, user.as_deref(), team.as_deref()).await?;
    let changes = serde_json::to_value(ChangedFields::of(&u)).unwrap_or_default();
    key.name = u.name.unwrap_or(key.name);
    key.user_id = user;
    key.team_id = team;
    key.models = u.models.unwrap_or(key.models);
    key.limits = u.limits.unwrap_or(key.limits);
    key.tags = u.tags.unwrap_or(key.tags);
    key.metadata = u.metadata.unwrap_or(key.metadata);
    key.expires_at_ms = u.expires_at_ms.unwrap_or(key.expires_at_ms);
    key.updated_at_ms = unix_ms();
    save(call, &key, "key.update", changes).await?;
    Ok(key)
}

/// The names of the fields an update sets, for the audit log.
#[derive(serde::Serialize)]
struct ChangedFields(Vec<&'static str>);

impl ChangedFields {
    fn of(u: &UpdateKey) -> ChangedFields {
        let fields = [
            ("name", u.name.is_some()),
            ("user_id", u.user_id.is_some()),
            ("team_id", u.team_id.is_some()),
            ("models", u.models.is_some()),
            ("limits", u.limits.is_some()),
            ("tags", u.tags.is_some()),
            ("metadata", u.metadata.is_some()),
            ("expires_at_ms", u.expires_at_ms.is_some()),
        ];
        ChangedFields(
            fields
                .into_iter()
                .filter(|(_, set)| *set)
                .map(|(f, _)| f)
                .collect(),
        )
    }
}

pub async fn revoke(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let call = open_call!(app, headers);
    let result = async {
        let mut key = load(&call, &id).await?;
        if key.revoked_at_ms.is_none() {
            key.revoked_at_ms = Some(unix_ms());
            key.updated_at_ms = unix_ms();
            save(&call, &key, "key.revoke", json!({ "prefix": key.prefix })).await?;
        }
        Ok::<_, GatewayError>(key)
    };
    call.respond(StatusCode::OK, result.await)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps working: `1h` by default, `0s` to stop it at once.
    #[serde(default)]
    grace: Option<String>,
}

pub async fn rotate(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Body,
) -> Response {
    let call = open_call!(app, headers);
    call.respond(StatusCode::CREATED, rotate_key(&call, &id, request).await)
}

async fn rotate_key(call: &Call, id: &str, request: Body) -> Result<Value, GatewayError> {
    let r: RotateKey = if call
        .ctx
        .headers
        .contains_key(axum::http::header::CONTENT_TYPE)
    {
        body(call, request).await?
    } else {
        RotateKey::default()
    };
    let grace_ms = duration_ms(r.grace.as_deref().unwrap_or("1h"))?;
    let old = load(call, id).await?;
    if old.revoked_at_ms.is_some() {
        return Err(GatewayError::invalid_request(
            "key_revoked",
            format!("key \"{id}\" is revoked: create a new key instead"),
        ));
    }
    let now = unix_ms();
    let (key, prefix) = KeyHasher::generate();
    let new = KeyRecord {
        id: new_key_id(),
        prefix,
        revoked_at_ms: None,
        replaced_by: None,
        created_at_ms: now,
        updated_at_ms: now,
        ..old.clone()
    };
    let admin = call.admin();
    let hash = admin.hasher().hash(&key);
    let old_expires = now + grace_ms;
    let rotated = admin
        .db
        .rotate_key(&old.id, old_expires, &new, &hash)
        .await
        .map_err(store_error)?;
    if !rotated {
        return Err(not_found("key", id));
    }
    if let Ok(Some(old_hash)) = admin.db.key_hash(&old.id).await {
        admin.invalidate(&old_hash).await;
    }
    admin.invalidate(&hash).await;
    let details =
        json!({ "new_key": new.id, "new_prefix": new.prefix, "old_expires_at_ms": old_expires });
    admin
        .audit(&call.actor, "key.rotate", &old.id, details)
        .await;
    let mut body = with_key(&new, &key);
    body["replaces"] = json!({ "id": old.id, "expires_at_ms": old.expires_at_ms.map_or(old_expires, |e| e.min(old_expires)) });
    Ok(body)
}

pub async fn usage(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let call = open_call!(app, headers);
    let result = match load(&call, &id).await {
        Ok(key) => usage_report(&call, "key", &key.id, &key.limits).await,
        Err(e) => Err(e),
    };
    call.respond(StatusCode::OK, result)
}

async fn load(call: &Call, id: &str) -> Result<KeyRecord, GatewayError> {
    call.admin()
        .db
        .key(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found("key", id))
}

/// Writes a changed key, forgets it in every replica's cache, and audits the change.
async fn save(
    call: &Call,
    key: &KeyRecord,
    action: &str,
    details: Value,
) -> Result<(), GatewayError> {
    let admin = call.admin();
    if !admin.db.update_key(key).await.map_err(store_error)? {
        return Err(not_found("key", &key.id));
    }
    if let Some(hash) = admin.db.key_hash(&key.id).await.map_err(store_error)? {
        admin.invalidate(&hash).await;
    }
    admin.audit(&call.actor, action, &key.id, details).await;
    Ok(())
}

async fn check_owners(
    call: &Call,
    user: Option<&str>,
    team: Option<&str>,
) -> Result<(), GatewayError> {
    let db = &call.admin().db;
    for (kind, id) in [(MemberKind::User, user), (MemberKind::Team, team)] {
        let Some(id) = id else { continue };
        if db.member(kind, id).await.map_err(store_error)?.is_none() {
            return Err(GatewayError::invalid_request(
                "unknown_owner",
                format!(
                    "no {} \"{id}\": create it first with POST /admin/{}s",
                    kind.as_str(),
                    kind.as_str()
                ),
            ));
        }
    }
    Ok(())
}

fn with_key(record: &KeyRecord, key: &str) -> Value {
    let mut body = serde_json::to_value(record).unwrap_or_default();
    body["key"] = key.into();
    body["note"] = "Store this key now: it is shown only once.".into();
    body
}

/// What the audit log keeps of a new key: everything but the key.
fn audit_view(record: &KeyRecord) -> Value {
    json!({
        "prefix": record.prefix,
        "name": record.name,
        "user_id": record.user_id,
        "team_id": record.team_id,
        "models": record.models,
        "limits": record.limits,
        "expires_at_ms": record.expires_at_ms,
    })
}

fn new_key_id() -> String {
    format!("key_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

fn duration_ms(text: &str) -> Result<i64, GatewayError> {
    humantime::parse_duration(text.trim())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|e| {
            GatewayError::invalid_request(
                "invalid_duration",
                format!("\"{text}\" is not a duration ({e}); write e.g. 30d, 12h or 90m"),
            )
        })
}

fn bad(message: String) -> GatewayError {
    GatewayError::invalid_request("invalid_limits", message)
}

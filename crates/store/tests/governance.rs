//! Governance storage against real databases: every test runs on SQLite in a temporary file and
//! on the PostgreSQL server of this machine (`postgres://postgres@127.0.0.1:5432/test`, one fresh
//! schema per test, dropped at the end). `both_engines!` makes the `sqlite::*` and `postgres::*`
//! test of each function below, so the two engines are held to one suite.

mod common;

use common::{PG_URL, TempDb, unique};

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;

use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use switchyard_core::admit::limits::{Budget, Limits, Period};
use switchyard_core::auth::keys::{KeyHasher, KeyLookup, KeyRecord, Member};
use switchyard_core::record::RequestRecord;
use switchyard_store::{AuditEntry, Database, KeyFilter, MemberKind, SpendScope, StoreError};

const NOW: i64 = 1_790_000_000_000;

/// `sqlite::NAME` and `postgres::NAME` tests for each suite function `NAME`.
macro_rules! both_engines {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_sqlite(super::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_postgres(super::$name).await;
                }
            )+
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A key with every field set, unicode and quotes included.
fn full_key(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        prefix: "sk-sy-Ab3x…".into(),
        name: Some("clé 🔑 \"prod\" 'x'; --".into()),
        user_id: Some("user-ü".into()),
        team_id: Some("team-🚀".into()),
        models: Some(vec!["gpt-4o".into(), "模型-🚀".into(), "smart".into()]),
        limits: Limits {
            rpm: Some(60),
            tpm: Some(100_000),
            max_parallel: Some(4),
            budgets: vec![
                Budget {
                    usd: 0.1,
                    period: Period::Day,
                },
                Budget {
                    usd: 1_000.0,
                    period: Period::Total,
                },
            ],
        },
        tags: vec!["prod".into(), "équipe \\ \"a\"".into()],
        metadata: json!({
            "owner": "مرحبا بالعالم",
            "n": 3,
            "nested": {"ok": true, "list": [1, 2.5, null, "𝔘𝔫𝔦"]},
        }),
        expires_at_ms: Some(NOW + 86_400_000),
        revoked_at_ms: None,
        replaced_by: None,
        created_at_ms: NOW,
        updated_at_ms: NOW + 1,
    }
}

/// A key with every optional field empty.
fn bare_key(id: &str, created_at_ms: i64) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        prefix: format!("sk-sy-{id}…"),
        created_at_ms,
        updated_at_ms: created_at_ms,
        ..KeyRecord::default()
    }
}

fn member(id: &str) -> Member {
    Member {
        id: id.to_owned(),
        name: Some(format!("name of {id} — 名前")),
        team_id: None,
        models: Some(vec!["gpt-4o".into()]),
        limits: Limits {
            rpm: Some(10),
            budgets: vec![Budget {
                usd: 50.0,
                period: Period::Month,
            }],
            ..Limits::default()
        },
        metadata: json!({"cost_center": "R&D ü"}),
        created_at_ms: NOW,
        updated_at_ms: NOW,
    }
}

fn ids(keys: &[KeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The suite

/// Every field of a key comes back as it was written; `models: None` (all) and `Some([])`
/// (none) stay distinct.
async fn key_round_trip(db: Database, _: Place) {
    let full = full_key("k-full");
    let bare = bare_key("k-bare", NOW);
    let none_allowed = KeyRecord {
        models: Some(Vec::new()),
        metadata: json!([]),
        ..bare_key("k-none", NOW)
    };
    for (key, hash) in [
        (&full, "h-full"),
        (&bare, "h-bare"),
        (&none_allowed, "h-none"),
    ] {
        db.insert_key(key, hash).await.expect("insert");
    }
    assert_eq!(db.key("k-full").await.expect("read"), Some(full));
    assert_eq!(db.key("k-bare").await.expect("read"), Some(bare));
    assert_eq!(db.key("k-none").await.expect("read"), Some(none_allowed));
    assert_eq!(
        db.key_hash("k-full").await.expect("hash").as_deref(),
        Some("h-full")
    );
    assert_eq!(db.key("missing").await.expect("read"), None);
    assert_eq!(db.key_hash("missing").await.expect("hash"), None);
}

/// A second key with the same id, or the same hash, is a conflict, and nothing is stored.
async fn key_conflicts(db: Database, _: Place) {
    db.insert_key(&bare_key("k1", NOW), "h1")
        .await
        .expect("insert");
    let err = db
        .insert_key(&bare_key("k1", NOW), "h2")
        .await
        .expect_err("same id");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("{}: virtual key \"k1\" already exists", db.kind())
    );
    let err = db
        .insert_key(&bare_key("k2", NOW), "h1")
        .await
        .expect_err("same hash");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(db.key("k2").await.expect("read"), None);
    assert_eq!(db.key_hash("h2").await.expect("read"), None);
}

/// Filters combine; revoked keys are left out unless asked for; newest first, ties by id.
async fn list_keys_filters(db: Database, _: Place) {
    let key = |id: &str, user: Option<&str>, team: Option<&str>, at: i64| KeyRecord {
        user_id: user.map(str::to_owned),
        team_id: team.map(str::to_owned),
        ..bare_key(id, at)
    };
    let keys = [
        key("a", Some("u1"), Some("t1"), 1),
        key("b", Some("u1"), Some("t2"), 2),
        key("c", Some("u2"), Some("t1"), 3),
        KeyRecord {
            revoked_at_ms: Some(10),
            ..key("d", Some("u1"), Some("t1"), 4)
        },
        key("e", None, None, 5),
        key("f", None, None, 5),
    ];
    for k in &keys {
        db.insert_key(k, &format!("hash-{}", k.id))
            .await
            .expect("insert");
    }
    let list = |user: Option<&str>, team: Option<&str>, include_revoked| KeyFilter {
        user_id: user.map(str::to_owned),
        team_id: team.map(str::to_owned),
        include_revoked,
    };
    let cases: [(KeyFilter, &[&str]); 9] = [
        (KeyFilter::default(), &["f", "e", "c", "b", "a"]),
        (list(None, None, true), &["f", "e", "d", "c", "b", "a"]),
        (list(Some("u1"), None, false), &["b", "a"]),
        (list(Some("u1"), None, true), &["d", "b", "a"]),
        (list(None, Some("t1"), false), &["c", "a"]),
        (list(Some("u1"), Some("t1"), true), &["d", "a"]),
        (list(Some("nobody"), None, true), &[]),
        (list(Some("u1\0"), None, true), &[]),
        (list(None, Some(""), true), &[]),
    ];
    for (filter, expected) in cases {
        let found = db.list_keys(&filter).await.expect("list");
        assert_eq!(ids(&found), expected, "{filter:?}");
    }
    let all = db.list_keys(&list(None, None, true)).await.expect("list");
    assert_eq!(all[2], keys[3], "listed keys are whole");
}

/// An update overwrites every mutable column and nothing else.
async fn update_key(db: Database, _: Place) {
    let original = full_key("k1");
    db.insert_key(&original, "h1").await.expect("insert");
    let changed = KeyRecord {
        id: "k1".into(),
        prefix: "sk-sy-CHANGED".into(),
        name: None,
        user_id: Some("u9".into()),
        team_id: None,
        models: None,
        limits: Limits {
            tpm: Some(5),
            ..Limits::default()
        },
        tags: vec!["new".into()],
        metadata: json!({"changed": "oui ✓"}),
        expires_at_ms: None,
        revoked_at_ms: Some(NOW + 5),
        replaced_by: Some("k2".into()),
        created_at_ms: 1,
        updated_at_ms: NOW + 5,
    };
    assert!(db.update_key(&changed).await.expect("update"));
    let stored = db.key("k1").await.expect("read").expect("row");
    let expected = KeyRecord {
        prefix: original.prefix.clone(),
        created_at_ms: original.created_at_ms,
        ..changed.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(
        db.key_hash("k1").await.expect("hash").as_deref(),
        Some("h1")
    );

    let missing = KeyRecord {
        id: "nope".into(),
        ..changed
    };
    assert!(!db.update_key(&missing).await.expect("update"));
    assert_eq!(db.key("nope").await.expect("read"), None);
}

/// Rotation stores the new key and ends the old one together, or does neither.
async fn rotate_key(db: Database, _: Place) {
    db.insert_key(&bare_key("old", NOW), "h-old")
        .await
        .expect("insert");
    let new = full_key("new");
    assert!(
        db.rotate_key("old", NOW + 1_000, &new, "h-new")
            .await
            .expect("rotate")
    );
    let old = db.key("old").await.expect("read").expect("row");
    assert_eq!(old.expires_at_ms, Some(NOW + 1_000));
    assert_eq!(old.replaced_by.as_deref(), Some("new"));
    assert_eq!(old.updated_at_ms, new.updated_at_ms);
    assert_eq!(old.revoked_at_ms, None);
    assert_eq!(db.key("new").await.expect("read"), Some(new));
    assert_eq!(
        db.key_hash("new").await.expect("hash").as_deref(),
        Some("h-new")
    );

    // An earlier expiry is kept: a grace period never extends a key.
    let soon = KeyRecord {
        expires_at_ms: Some(NOW + 10),
        ..bare_key("soon", NOW)
    };
    db.insert_key(&soon, "h-soon").await.expect("insert");
    assert!(
        db.rotate_key("soon", NOW + 1_000, &bare_key("soon2", NOW), "h-soon2")
            .await
            .expect("rotate")
    );
    let soon = db.key("soon").await.expect("read").expect("row");
    assert_eq!(soon.expires_at_ms, Some(NOW + 10));

    // A missing or revoked key is not rotated, and the new key is not stored.
    assert!(
        !db.rotate_key("ghost", NOW, &bare_key("n1", NOW), "h-n1")
            .await
            .expect("rotate")
    );
    let revoked = KeyRecord {
        revoked_at_ms: Some(NOW),
        ..bare_key("revoked", NOW)
    };
    db.insert_key(&revoked, "h-revoked").await.expect("insert");
    assert!(
        !db.rotate_key("revoked", NOW, &bare_key("n2", NOW), "h-n2")
            .await
            .expect("rotate")
    );
    assert_eq!(db.key("revoked").await.expect("read"), Some(revoked));
    for id in ["n1", "n2"] {
        assert_eq!(db.key(id).await.expect("read"), None, "{id}");
    }

    // A new key that cannot be stored leaves the old one untouched.
    db.insert_key(&bare_key("live", NOW), "h-live")
        .await
        .expect("insert");
    for (id, hash) in [("new", "h-fresh"), ("fresh", "h-new")] {
        let err = db
            .rotate_key("live", NOW, &bare_key(id, NOW), hash)
            .await
            .expect_err("conflict");
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    }
    assert_eq!(
        db.key("live").await.expect("read"),
        Some(bare_key("live", NOW))
    );
    assert_eq!(db.key("fresh").await.expect("read"), None);
}

/// The auth cache's view: keys by hash (revoked ones too: the cache refuses them), users, teams.
async fn key_lookup(db: Database, _: Place) {
    let key = full_key("k1");
    db.insert_key(&key, "h1").await.expect("insert");
    let revoked = KeyRecord {
        revoked_at_ms: Some(NOW),
        ..bare_key("k2", NOW)
    };
    db.insert_key(&revoked, "h2").await.expect("insert");
    db.insert_member(MemberKind::User, &member("user-ü"))
        .await
        .expect("user");
    db.insert_member(MemberKind::Team, &member("team-🚀"))
        .await
        .expect("team");

    let lookup: &dyn KeyLookup = &db;
    assert_eq!(lookup.key_by_hash("h1").await, Ok(Some(key)));
    assert_eq!(lookup.key_by_hash("h2").await, Ok(Some(revoked)));
    assert_eq!(lookup.key_by_hash("k1").await, Ok(None), "by hash, not id");
    assert_eq!(lookup.user("user-ü").await, Ok(Some(member("user-ü"))));
    assert_eq!(lookup.team("team-🚀").await, Ok(Some(member("team-🚀"))));
    assert_eq!(
        lookup.user("team-🚀").await,
        Ok(None),
        "users are not teams"
    );
    assert_eq!(lookup.team("nobody").await, Ok(None));

    // Failures are strings naming the database.
    raw(&db, "DROP TABLE virtual_keys").await;
    let err = lookup.key_by_hash("h1").await.expect_err("no table");
    assert!(err.contains(db.kind()), "{err}");
    assert!(err.contains("virtual_keys"), "{err}");
}

/// Users and teams: insert, read, list by id, update, conflicts; one id space per kind.
async fn members_crud(db: Database, _: Place) {
    for kind in [MemberKind::User, MemberKind::Team] {
        for id in ["b", "a", "ç-🚀", "c"] {
            db.insert_member(kind, &member(id)).await.expect("insert");
        }
        assert_eq!(db.member(kind, "a").await.expect("read"), Some(member("a")));
        assert_eq!(db.member(kind, "zz").await.expect("read"), None);
        let listed: Vec<String> = db
            .list_members(kind)
            .await
            .expect("list")
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(listed, ["a", "b", "c", "ç-🚀"], "{kind:?}");

        let err = db
            .insert_member(kind, &member("a"))
            .await
            .expect_err("duplicate");
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("{}: {} \"a\" already exists", db.kind(), kind.as_str())
        );

        let changed = Member {
            name: None,
            team_id: (kind == MemberKind::User).then(|| "t1".to_owned()),
            models: None,
            limits: Limits::default(),
            metadata: serde_json::Value::Null,
            created_at_ms: 0,
            updated_at_ms: NOW + 9,
            ..member("b")
        };
        assert!(db.update_member(kind, &changed).await.expect("update"));
        let expected = Member {
            created_at_ms: NOW,
            ..changed.clone()
        };
        assert_eq!(db.member(kind, "b").await.expect("read"), Some(expected));
        let ghost = Member {
            id: "ghost".into(),
            ..changed
        };
        assert!(!db.update_member(kind, &ghost).await.expect("update"));
    }
    assert_eq!(
        db.member(MemberKind::User, "b")
            .await
            .expect("read")
            .and_then(|m| m.team_id)
            .as_deref(),
        Some("t1")
    );
    // A team in a team is refused, not stored half.
    let nested = Member {
        team_id: Some("t0".into()),
        ..member("t-nested")
    };
    let err = db
        .insert_member(MemberKind::Team, &nested)
        .await
        .expect_err("team in a team");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert_eq!(
        db.member(MemberKind::Team, "t-nested").await.expect("read"),
        None
    );
}

/// The audit log reads back newest first (ties: the last appended first), up to `limit`.
async fn audit_order(db: Database, _: Place) {
    let entry = |at_ms, n: u32| AuditEntry {
        at_ms,
        actor: format!("admin {n} ü"),
        action: "key.create".into(),
        target: format!("key:k{n}"),
        details: json!({"n": n, "prefix": "sk-sy-Ab3x…", "models": ["模型"]}),
    };
    let appended = [entry(10, 1), entry(20, 2), entry(20, 3), entry(5, 4)];
    for e in &appended {
        db.append_audit(e).await.expect("append");
    }
    let log = db.audit_log(100).await.expect("read");
    let expected = [&appended[2], &appended[1], &appended[0], &appended[3]];
    assert_eq!(log.iter().collect::<Vec<_>>(), expected);
    assert_eq!(db.audit_log(2).await.expect("read"), log[..2]);
    assert!(db.audit_log(0).await.expect("read").is_empty());
    assert!(db.audit_log(-1).await.expect("read").is_empty());
}

/// One secret per database: stable across calls and handles, and one winner in a race.
async fn key_secret(db: Database, place: Place) {
    let secret = db.key_secret().await.expect("secret");
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    assert_eq!(db.key_secret().await.expect("again"), secret);
    let other = place.open().await;
    assert_eq!(other.key_secret().await.expect("other handle"), secret);

    raw(&db, "DELETE FROM settings").await;
    let (a, b) = tokio::join!(db.key_secret(), other.key_secret());
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a, b, "both handles settle on one secret");
    assert_ne!(a, secret, "a fresh secret is random");
    other.close().await;
}

/// Spend sums the cost of one key's, user's or team's requests from a point in time on.
async fn spend_since(db: Database, _: Place) {
    let request = |n: u32, key: Option<&str>, user: Option<&str>, team: Option<&str>, at, usd| {
        RequestRecord {
            request_id: format!("r{n}"),
            started_at_ms: at,
            key_id: key.map(str::to_owned),
            user: user.map(str::to_owned),
            team: team.map(str::to_owned),
            feature: key.map(|k| format!("feature-of-{k}")),
            route: (n % 2 == 1).then(|| "smart".to_owned()),
            model: Some(format!("model-{}", n % 2)),
            cost_usd: usd,
            ..RequestRecord::default()
        }
    };
    // Spend is read from the hourly rollup: budget windows start on the hour.
    const H: i64 = 3_600_000;
    let batch = [
        request(1, Some("k1"), Some("u1"), Some("t1"), H, 0.5),
        request(2, Some("k1"), Some("u1"), Some("t1"), 2 * H + 5, 0.25),
        request(3, Some("k2"), Some("u1"), Some("t2"), 2 * H, 1.0),
        request(4, Some("k1"), Some("u2"), Some("t1"), H - 1, 8.0),
        request(5, None, None, None, 5 * H, 16.0),
    ];
    db.write_records(&batch).await.expect("write");
    let cases = [
        (SpendScope::Key, "k1", H, 0.75),
        (SpendScope::Key, "k1", 0, 8.75),
        (SpendScope::Key, "k2", 3 * H, 0.0),
        (SpendScope::User, "u1", H, 1.75),
        (SpendScope::User, "u2", 0, 8.0),
        (SpendScope::Team, "t1", 2 * H, 0.25),
        (SpendScope::Team, "t2", 3 * H, 0.0),
        (SpendScope::Key, "nobody", 0, 0.0),
        (SpendScope::Team, "u1", 0, 0.0),
        (SpendScope::Feature, "feature-of-k1", H, 0.75),
        // r1, r3 and r5 came through the route "smart" (served by model-1); r2 and r4 by model-0.
        (SpendScope::Model, "smart", 0, 17.5),
        (SpendScope::Model, "model-1", 0, 17.5),
        (SpendScope::Model, "model-0", H, 0.25),
        (SpendScope::Global, "*", 2 * H, 17.25),
        (SpendScope::Global, "*", 0, 25.75),
    ];
    for (scope, id, since, usd) in cases {
        let spent = db.spend_since(scope, id, since).await.expect("spend");
        assert_eq!(spent, usd, "{scope:?} {id} since {since}");
    }
}

/// Neither a key nor its random part is stored anywhere, in any column of any row of the key
/// and audit tables, whatever is done with it; its display prefix and hash are.
async fn no_key_in_clear_text(db: Database, _: Place) {
    let hasher = KeyHasher::new(b"secret");
    let mut issued = Vec::new();
    for n in 0..4 {
        let (key, prefix) = KeyHasher::generate();
        let record = KeyRecord {
            prefix: prefix.clone(),
            name: Some(format!("key {n}")),
            ..full_key(&format!("k{n}"))
        };
        if n == 3 {
            assert!(
                db.rotate_key("k0", NOW, &record, &hasher.hash(&key))
                    .await
                    .expect("rotate")
            );
        } else {
            db.insert_key(&record, &hasher.hash(&key))
                .await
                .expect("insert");
        }
        db.append_audit(&AuditEntry {
            at_ms: NOW + n,
            actor: "admin".into(),
            action: "key.create".into(),
            target: format!("key:k{n}"),
            details: json!({"prefix": prefix, "name": record.name}),
        })
        .await
        .expect("audit");
        issued.push((key, prefix));
    }
    let revoked = KeyRecord {
        revoked_at_ms: Some(NOW),
        ..db.key("k1").await.expect("read").expect("row")
    };
    assert!(db.update_key(&revoked).await.expect("revoke"));

    let mut cells = dump(&db, "virtual_keys").await;
    cells.extend(dump(&db, "audit_log").await);
    assert!(cells.len() > 4 * 15, "{} cells", cells.len());
    for (key, prefix) in &issued {
        let random = &key["sk-sy-".len()..];
        for cell in &cells {
            assert!(!cell.contains(random), "a key is stored in clear: {cell}");
        }
        assert!(cells.iter().any(|c| c == prefix), "prefix {prefix}");
        assert!(cells.contains(&hasher.hash(key)), "hash of {prefix}");
    }
}

/// Values that would not read back as written are refused on both engines, with nothing
/// stored; ids with a NUL are simply not found.
async fn invalid_values(db: Database, _: Place) {
    let nul_name = KeyRecord {
        name: Some("a\0b".into()),
        ..bare_key("k1", NOW)
    };
    let nan_budget = KeyRecord {
        limits: Limits {
            budgets: vec![Budget {
                usd: f64::NAN,
                period: Period::Day,
            }],
            ..Limits::default()
        },
        ..bare_key("k1", NOW)
    };
    let nul_metadata = KeyRecord {
        metadata: json!({"deep": [{"x": "\u{0}"}]}),
        ..bare_key("k1", NOW)
    };
    for key in [&nul_name, &nan_budget, &nul_metadata] {
        let err = db.insert_key(key, "h1").await.expect_err("refused");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(db.kind()), "{message}");
        assert!(message.contains("virtual key \"k1\""), "{message}");
    }
    assert_eq!(db.key("k1").await.expect("read"), None);
    let err = db
        .insert_key(&bare_key("k\0", NOW), "h1")
        .await
        .expect_err("NUL id");
    assert!(err.to_string().contains("id contains a NUL"), "{err}");

    db.insert_key(&bare_key("k1", NOW), "h1")
        .await
        .expect("insert");
    let err = db.update_key(&nul_name).await.expect_err("refused");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert_eq!(db.key("k1").await.expect("read"), Some(bare_key("k1", NOW)));

    let err = db
        .insert_member(
            MemberKind::User,
            &Member {
                name: Some("\0".into()),
                ..member("u1")
            },
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    let err = db
        .append_audit(&AuditEntry {
            at_ms: NOW,
            actor: "admin\0".into(),
            action: "x".into(),
            target: "y".into(),
            details: json!(null),
        })
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(db.audit_log(10).await.expect("read").is_empty());

    assert_eq!(db.key("k1\0").await.expect("read"), None);
    assert_eq!(db.key_hash("k1\0").await.expect("read"), None);
    assert_eq!(db.member(MemberKind::Team, "\0").await.expect("read"), None);
    assert!(!db.update_key(&bare_key("k1\0", NOW)).await.expect("update"));
    assert_eq!(
        db.spend_since(SpendScope::Key, "\0", 0)
            .await
            .expect("spend"),
        0.0
    );
    let lookup: &dyn KeyLookup = &db;
    assert_eq!(lookup.key_by_hash("h1\0").await, Ok(None));
}

/// A stored row that no longer parses is an error naming the row and column, not a panic or
/// a default.
async fn corrupt_rows(db: Database, _: Place) {
    db.insert_key(&full_key("k1"), "h1").await.expect("insert");
    raw(
        &db,
        "UPDATE virtual_keys SET limits = '{\"rpm\": \"lots\"}' WHERE id = 'k1'",
    )
    .await;
    let err = db.key("k1").await.expect_err("corrupt");
    assert!(matches!(err, StoreError::CorruptRow { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("virtual_keys \"k1\""), "{message}");
    assert!(message.contains("stored limits is not valid"), "{message}");
    assert!(db.list_keys(&KeyFilter::default()).await.is_err());

    db.insert_member(MemberKind::Team, &member("t1"))
        .await
        .expect("insert");
    raw(&db, "UPDATE teams SET models = '{}' WHERE id = 't1'").await;
    let err = db
        .member(MemberKind::Team, "t1")
        .await
        .expect_err("corrupt");
    assert!(err.to_string().contains("teams \"t1\""), "{err}");
}

both_engines!(
    key_round_trip,
    key_conflicts,
    list_keys_filters,
    update_key,
    rotate_key,
    key_lookup,
    members_crud,
    audit_order,
    key_secret,
    spend_since,
    no_key_in_clear_text,
    invalid_values,
    corrupt_rows,
);

// ---------------------------------------------------------------------------------------------
// Raw SQL, for what the API cannot do

async fn raw(db: &Database, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db {
        Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .expect("raw SQL");
}

/// Every column of every row of `table`, as text (NULLs left out).
async fn dump(db: &Database, table: &str) -> Vec<String> {
    let columns: Vec<String> = match db {
        Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(pool)
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await
        }
    }
    .expect("columns");
    assert!(columns.len() >= 6, "{table}: {columns:?}");
    let mut cells = Vec::new();
    for column in columns {
        let sql = sqlx::AssertSqlSafe(format!("SELECT CAST({column} AS TEXT) FROM {table}"));
        let values: Vec<Option<String>> = match db {
            Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .expect("select");
        cells.extend(values.into_iter().flatten());
    }
    cells
}

// ---------------------------------------------------------------------------------------------
// Engines

/// Where a test's database lives, to open a second handle on it.
enum Place {
    Sqlite(String),
    Postgres(String),
}

impl Place {
    async fn open(&self) -> Database {
        match self {
            Place::Sqlite(url) => Database::connect(url).await,
            Place::Postgres(schema) => Database::connect_postgres_schema(PG_URL, schema).await,
        }
        .expect("second handle")
    }
}

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Database, Place) -> Fut,
    Fut: Future<Output = ()>,
{
    let file = TempDb::new();
    let db = Database::connect(&file.url())
        .await
        .expect("connect to SQLite");
    test(db.clone(), Place::Sqlite(file.url())).await;
    db.close().await;
}

/// Runs `test` on a database in a fresh schema, then drops the schema, even if `test` panicked.
async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Database, Place) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = format!("sy_gov_{}", unique());
    let mut admin = PgConnection::connect(PG_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (start it with pg_ctlcluster)");
    let outcome = match Database::connect_postgres_schema(PG_URL, &schema).await {
        Ok(db) => {
            let outcome = catch_unwind(test(db.clone(), Place::Postgres(schema.clone()))).await;
            db.close().await;
            outcome
        }
        Err(e) => Err(Box::new(format!("connect: {e}")) as Box<dyn std::any::Any + Send>),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut admin)
    .await
    .expect("drop schema");
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `test` to its end or its panic, which is returned rather than unwound. (Not
/// `tokio::spawn`: a future that connects to a database cannot be proven `Send`.)
async fn catch_unwind(test: impl Future<Output = ()>) -> std::thread::Result<()> {
    let mut test = std::pin::pin!(test);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| test.as_mut().poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    })
    .await
}

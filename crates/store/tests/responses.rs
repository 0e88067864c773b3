//! The kept Responses API responses against real databases (a temporary SQLite file and a fresh
//! PostgreSQL schema): a response reads back as it was written, only for its owner and only until it expires; a write never replaces another owner's response; the
//! purge deletes exactly the expired ones.

mod common;

use common::{with_postgres, with_sqlite};
use serde_json::json;
use switchyard_core::response_store::{ResponseStore, StoredResponse};
use switchyard_store::Database;

fn stored(id: &str, owner: &str, expires_at_ms: i64) -> StoredResponse {
    StoredResponse {
        id: id.into(),
        owner: owner.into(),
        created_at_ms: 1_000,
        expires_at_ms,
        input_items: json!([{"role": "user", "content": "naïve café ☕"}]),
        response: json!({"id": id, "object": "response", "status": "completed",
            "output": [{"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "hello", "annotations": []}]}]}),
    }
}

async fn round_trip(db: &Database) {
    let a = stored("resp_a", "key-1", 10_000);
    ResponseStore::put(db, &a).await.expect("put");
    let back = ResponseStore::get(db, "resp_a", "key-1", 5_000)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(back, a);
    assert_eq!(back.conversation().len(), 2);

    // Another key sees nothing, and cannot overwrite it.
    assert!(
        db.response("resp_a", "key-2", 5_000)
            .await
            .unwrap()
            .is_none()
    );
    let mut hijack = stored("resp_a", "key-2", 99_000);
    hijack.response = json!({"id": "resp_a", "output": []});
    db.put_response(&hijack).await.expect("put ignored");
    let kept = db
        .response("resp_a", "key-1", 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.response, a.response);

    // The owner may replace it.
    let mut newer = a.clone();
    newer.expires_at_ms = 20_000;
    db.put_response(&newer).await.expect("replace");
    assert!(
        db.response("resp_a", "key-1", 15_000)
            .await
            .unwrap()
            .is_some()
    );

    // Expired rows are not read, and the purge deletes exactly them.
    db.put_response(&stored("resp_b", "key-1", 3_000))
        .await
        .unwrap();
    assert!(
        db.response("resp_b", "key-1", 3_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(db.response("nul\0id", "key-1", 0).await.unwrap().is_none());
    assert_eq!(ResponseStore::purge_expired(db, 3_000).await.unwrap(), 1);
    assert_eq!(db.purge_expired_responses(3_000).await.unwrap(), 0);
    assert!(
        db.response("resp_a", "key-1", 3_000)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn responses_round_trip_on_sqlite() {
    with_sqlite(|db| async move { round_trip(&db).await }).await;
}

#[tokio::test]
async fn responses_round_trip_on_postgres() {
    with_postgres(|db| async move { round_trip(&db).await }).await;
}

//! Users and teams: the `users` and `teams` tables, one row per [`Member`].
//!
//! The two tables have the same columns, so one set of statements serves both; a team belongs
//! to no team, and one that says otherwise is refused rather than stored half.

use sqlx::FromRow;
use switchyard_core::auth::keys::Member;

use super::{
    MemberKind, Param, Sql, json, json_opt, limits_json, parse, parse_opt, stored, stored_opt,
};
use crate::db::Database;
use crate::error::StoreError;

/// The statements of one member table.
struct Statements {
    table: &'static str,
    insert: Sql,
    update: Sql,
    select: Sql,
    list: Sql,
}

macro_rules! member_columns {
    () => {
        "id, name, team_id, CAST(models AS TEXT) AS models, CAST(limits AS TEXT) AS limits, \
         CAST(metadata AS TEXT) AS metadata, created_at_ms, updated_at_ms"
    };
}

macro_rules! statements {
    ($table:literal) => {
        Statements {
            table: $table,
            insert: sql!(
                "INSERT INTO ",
                $table,
                " (id, name, team_id, models, limits, metadata, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4",
                J,
                ", $5",
                J,
                ", $6",
                J,
                ", $7, $8)"
            ),
            update: sql!(
                "UPDATE ",
                $table,
                " SET name = $2, team_id = $3, models = $4",
                J,
                ", limits = $5",
                J,
                ", metadata = $6",
                J,
                ", updated_at_ms = $7 WHERE id = $1"
            ),
            select: sql!(
                "SELECT ",
                member_columns!(),
                " FROM ",
                $table,
                " WHERE id = $1"
            ),
            list: sql!(
                "SELECT ",
                member_columns!(),
                " FROM ",
                $table,
                " ORDER BY id"
            ),
        }
    };
}

const USERS: Statements = statements!("users");
const TEAMS: Statements = statements!("teams");

impl MemberKind {
    fn statements(self) -> &'static Statements {
        match self {
            MemberKind::User => &USERS,
            MemberKind::Team => &TEAMS,
        }
    }
}

/// A row of `users` or `teams` as selected, before its JSON is parsed.
#[derive(FromRow)]
struct MemberRow {
    id: String,
    name: Option<String>,
    team_id: Option<String>,
    models: Option<String>,
    limits: String,
    metadata: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl Database {
    /// Stores a new user or team; one with the same id is a [`StoreError::Conflict`].
    pub async fn insert_member(&self, kind: MemberKind, m: &Member) -> Result<(), StoreError> {
        let mut params = vec![stored("id", &m.id).map_err(self.invalid(what(kind, &m.id)))?];
        params.extend(member_params(kind, m).map_err(self.invalid(what(kind, &m.id)))?);
        params.push(Param::Int(Some(m.created_at_ms)));
        params.push(Param::Int(Some(m.updated_at_ms)));
        self.execute(&kind.statements().insert, params)
            .await
            .map_err(self.insert_failed(|| what(kind, &m.id)))?;
        Ok(())
    }

    pub async fn member(&self, kind: MemberKind, id: &str) -> Result<Option<Member>, StoreError> {
        let rows: Vec<MemberRow> = self
            .rows(&kind.statements().select, vec![Param::text(id)])
            .await
            .map_err(self.failed())?;
        rows.into_iter()
            .next()
            .map(|row| self.decode_member(kind, row))
            .transpose()
    }

    /// Every user or every team, by id.
    pub async fn list_members(&self, kind: MemberKind) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = self
            .rows(&kind.statements().list, Vec::new())
            .await
            .map_err(self.failed())?;
        rows.into_iter()
            .map(|row| self.decode_member(kind, row))
            .collect()
    }

    /// Overwrites everything of member `m.id` but its creation time. `false` if there is no
    /// such user or team.
    pub async fn update_member(&self, kind: MemberKind, m: &Member) -> Result<bool, StoreError> {
        let mut params = vec![Param::text(&m.id)];
        params.extend(member_params(kind, m).map_err(self.invalid(what(kind, &m.id)))?);
        params.push(Param::Int(Some(m.updated_at_ms)));
        let changed = self
            .execute(&kind.statements().update, params)
            .await
            .map_err(self.failed())?;
        Ok(changed > 0)
    }

    fn decode_member(&self, kind: MemberKind, row: MemberRow) -> Result<Member, StoreError> {
        let corrupt = self.corrupt(kind.statements().table, &row.id);
        Ok(Member {
            models: parse_opt(&corrupt, "models", row.models.as_deref())?,
            limits: parse(&corrupt, "limits", &row.limits)?,
            metadata: parse(&corrupt, "metadata", &row.metadata)?,
            id: row.id,
            name: row.name,
            team_id: row.team_id,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        })
    }
}

fn what(kind: MemberKind, id: &str) -> String {
    format!("{} {id:?}", kind.as_str())
}

/// The columns from `name` to `metadata`, in table order.
fn member_params(kind: MemberKind, m: &Member) -> Result<Vec<Param>, String> {
    if kind == MemberKind::Team && m.team_id.is_some() {
        return Err("a team belongs to no team: leave team_id empty".into());
    }
    Ok(vec![
        stored_opt("name", m.name.as_deref())?,
        stored_opt("team_id", m.team_id.as_deref())?,
        json_opt("models", m.models.as_ref())?,
        limits_json(&m.limits)?,
        json("metadata", &m.metadata)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tables_get_the_same_statements() {
        assert_eq!(
            USERS.select.sqlite.replace("users", "teams"),
            TEAMS.select.sqlite
        );
        assert_eq!(
            USERS.insert.postgres.replace("users", "teams"),
            TEAMS.insert.postgres
        );
        assert_eq!(USERS.insert.postgres.matches("::jsonb").count(), 3);
        assert_eq!(USERS.update.postgres.matches("::jsonb").count(), 3);
        assert!(!USERS.update.sqlite.contains("::"));
        let n = member_params(MemberKind::User, &Member::default())
            .unwrap()
            .len();
        assert!(USERS.insert.sqlite.contains(&format!("${}", n + 3)));
        assert!(USERS.update.sqlite.contains(&format!("${}", n + 2)));
    }
}

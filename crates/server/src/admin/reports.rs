//! `/admin/reports/{usage,latency,events}`: the reports of `switchyard-store` over HTTP.
//!
//! `GET /admin/reports/usage?group_by=team,day&from=…&to=…&limit=…` (spend and outcomes by any
//! combination of team, user, key, feature, model, provider, route and day or hour),
//! `GET /admin/reports/latency?from=…&to=…` (percentiles per provider and model) and
//! `GET /admin/reports/events?from=…&to=…` (failed attempts, guardrail actions). `from` and `to`
//! take RFC 3339 (`2026-01-05T13:00:00Z`, `…+02:00`), a UTC date (`2026-01-05`, its midnight) or
//! epoch milliseconds; the range is `[from, to)`, by default the last 30 days up to now, and the
//! store rounds it out to whole hours. A parameter the API does not know, a bad date or an unknown
//! group is a 400 whose message names what is allowed.
//!
//! This module parses and answers; the SQL, the rounding and the percentiles live in
//! `switchyard_store::reports`. Reports are read-only and are not written to the audit log.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use switchyard_core::GatewayError;
use switchyard_core::request::unix_ms;
use switchyard_store::reports::{DAY_MS, days_from_civil};
use switchyard_store::{GroupBy, TimeRange, UsageQuery};

use super::{open_call, store_error};
use crate::ingress::Shared;

/// The range when `from` is not given: this many days before `to`.
const DEFAULT_DAYS: i64 = 30;
const RANGE_PARAMS: &[&str] = &["from", "to"];
const USAGE_PARAMS: &[&str] = &["group_by", "from", "to", "limit"];

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

pub async fn usage(State(app): Shared, headers: HeaderMap, params: Params) -> Response {
    let call = open_call!(app, headers);
    let query = match params_of(params, USAGE_PARAMS).and_then(|p| usage_query(&p, unix_ms())) {
        Ok(query) => query,
        Err(e) => return call.fail(&e),
    };
    let report = call.admin().db.usage_report(&query).await;
    call.respond(StatusCode::OK, report.map_err(store_error))
}

pub async fn latency(State(app): Shared, headers: HeaderMap, params: Params) -> Response {
    let call = open_call!(app, headers);
    let range = match params_of(params, RANGE_PARAMS).and_then(|p| range(&p, unix_ms())) {
        Ok(range) => range,
        Err(e) => return call.fail(&e),
    };
    let report = call.admin().db.latency_report(range).await;
    call.respond(StatusCode::OK, report.map_err(store_error))
}

pub async fn events(State(app): Shared, headers: HeaderMap, params: Params) -> Response {
    let call = open_call!(app, headers);
    let range = match params_of(params, RANGE_PARAMS).and_then(|p| range(&p, unix_ms())) {
        Ok(range) => range,
        Err(e) => return call.fail(&e),
    };
    let report = call.admin().db.events_report(range).await;
    call.respond(StatusCode::OK, report.map_err(store_error))
}

fn bad(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request("invalid_report_parameter", message).with_param(param)
}

/// The query string, refusing parameters that are not in `allowed`.
fn params_of(params: Params, allowed: &[&str]) -> Result<HashMap<String, String>, GatewayError> {
    let Query(params) = params.map_err(|e| bad("query", format!("invalid query string: {e}")))?;
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(
            unknown,
            format!(
                "unknown parameter \"{unknown}\": use {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(params)
}

fn usage_query(params: &HashMap<String, String>, now_ms: i64) -> Result<UsageQuery, GatewayError> {
    let range = range(params, now_ms)?;
    let group_by = params.get("group_by").map_or("", String::as_str);
    let group_by = GroupBy::parse(group_by).map_err(|e| bad("group_by", e.to_string()))?;
    let limit = match params.get("limit").map(|s| s.trim()) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            bad(
                "limit",
                format!("limit \"{s}\" is not a number: give a whole number of rows, e.g. 10"),
            )
        })?),
    };
    UsageQuery::new(range, group_by, limit).map_err(|e| bad("limit", e.to_string()))
}

/// `[from, to)` from the parameters: `to` defaults to now, `from` to 30 days before `to`.
fn range(params: &HashMap<String, String>, now_ms: i64) -> Result<TimeRange, GatewayError> {
    let at = |name: &str| -> Result<Option<i64>, GatewayError> {
        match params.get(name).map(|s| s.trim()) {
            None | Some("") => Ok(None),
            Some(s) => parse_instant(s).map(Some).map_err(|e| {
                bad(
                    name,
                    format!(
                        "{name} \"{s}\" is not a time ({e}): use RFC 3339 (2026-01-05T13:00:00Z), \
                         a UTC date (2026-01-05) or epoch milliseconds"
                    ),
                )
            }),
        }
    };
    let to = at("to")?.unwrap_or(now_ms);
    let from = at("from")?.unwrap_or(to.saturating_sub(DEFAULT_DAYS * DAY_MS));
    TimeRange::new(from, to).map_err(|e| bad("from", e.to_string()))
}

/// Epoch milliseconds of `s`: digits (epoch ms), `YYYY-MM-DD` (midnight UTC) or RFC 3339
/// (`T` or a space between date and time; seconds and fraction optional; `Z`, `±HH:MM` or no
/// offset, which means UTC).
pub fn parse_instant(s: &str) -> Result<i64, &'static str> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| "out of range");
    }
    let (date, rest) = s.split_at_checked(10).ok_or("expected YYYY-MM-DD")?;
    let day = parse_date(date)?;
    if rest.is_empty() {
        return Ok(day * DAY_MS);
    }
    let rest = rest
        .strip_prefix(['T', 't', ' '])
        .ok_or("expected T between the date and the time")?;
    let (time, offset_ms) = split_offset(rest)?;
    let time_ms = parse_time(time)?;
    Ok(day * DAY_MS + time_ms - offset_ms)
}

/// Days since the epoch of `YYYY-MM-DD`.
fn parse_date(date: &str) -> Result<i64, &'static str> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("expected YYYY-MM-DD");
    }
    let year = number(&date[0..4])?;
    let month = number(&date[5..7])?;
    let day = number(&date[8..10])?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("no such month"),
    };
    if day < 1 || day > days_in_month {
        return Err("no such day");
    }
    Ok(days_from_civil(i64::from(year), month, day))
}

/// The time of day and the offset east of UTC, in milliseconds.
fn split_offset(rest: &str) -> Result<(&str, i64), &'static str> {
    if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        return Ok((time, 0));
    }
    match rest.rfind(['+', '-']) {
        Some(i) => {
            let offset = &rest[i + 1..];
            let (h, m) = offset
                .split_once(':')
                .ok_or("expected an offset as ±HH:MM")?;
            let (h, m) = (number(h)?, number(m)?);
            if h > 23 || m > 59 || offset.len() != 5 {
                return Err("expected an offset as ±HH:MM");
            }
            let ms = i64::from(h * 60 + m) * 60_000;
            Ok((
                &rest[..i],
                if rest.as_bytes()[i] == b'-' { -ms } else { ms },
            ))
        }
        None => Ok((rest, 0)),
    }
}

/// `HH:MM[:SS[.fff]]` in milliseconds.
fn parse_time(time: &str) -> Result<i64, &'static str> {
    let mut parts = time.splitn(3, ':');
    let hour = number(parts.next().unwrap_or(""))?;
    let minute = number(parts.next().ok_or("expected HH:MM")?)?;
    let (second, millis) = match parts.next() {
        None => (0, 0),
        Some(s) => {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err("expected a fraction of a second in digits");
            }
            let padded = format!("{fraction:0<3}");
            (number(whole)?, number(&padded[..3])?)
        }
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    Ok(i64::from(
        ((hour * 60 + minute) * 60 + second.min(59)) * 1000 + millis,
    ))
}

fn number(digits: &str) -> Result<u32, &'static str> {
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected digits");
    }
    digits.parse().map_err(|_| "expected digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_5: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn times_are_rfc3339_dates_or_epoch_ms() {
        assert_eq!(parse_instant("2026-01-05"), Ok(JAN_5));
        assert_eq!(parse_instant("1767571200000"), Ok(JAN_5));
        let one_pm = JAN_5 + 13 * 3_600_000;
        assert_eq!(parse_instant("2026-01-05T13:00:00Z"), Ok(one_pm));
        assert_eq!(parse_instant("2026-01-05t13:00z"), Ok(one_pm));
        assert_eq!(parse_instant("2026-01-05 15:00:00+02:00"), Ok(one_pm));
        assert_eq!(parse_instant("2026-01-05T08:30:00-04:30"), Ok(one_pm));
        assert_eq!(parse_instant("2026-01-05T13:00:00.25Z"), Ok(one_pm + 250));
        assert_eq!(parse_instant("2026-01-05T13:00:00"), Ok(one_pm));
        assert_eq!(parse_instant("2024-02-29"), Ok(1_709_164_800_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-01-32",
            "2026-01-05T25:00:00Z",
            "2026-01-05T13:00:00+2",
            "2026-01-05X13:00",
            "2026/01/05",
            "99999999999999999999",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad:?} parsed");
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_default_range_is_the_last_30_days() {
        let now = JAN_5 + 123;
        let r = range(&params(&[]), now).unwrap();
        assert_eq!((r.from_ms, r.to_ms), (now - 30 * DAY_MS, now));
        let r = range(&params(&[("to", "2026-01-05")]), now).unwrap();
        assert_eq!((r.from_ms, r.to_ms), (JAN_5 - 30 * DAY_MS, JAN_5));
        let err = range(&params(&[("from", "2026-02-01")]), now).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("before"), "{}", err.message);
        let err = range(&params(&[("from", "last week")]), now).unwrap_err();
        assert!(err.message.contains("RFC 3339"), "{}", err.message);
        assert_eq!(err.param.as_deref(), Some("from"));
    }

    #[test]
    fn bad_usage_parameters_name_what_is_allowed() {
        let now = JAN_5;
        let err = usage_query(&params(&[("group_by", "team,colour")]), now).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("group_by")));
        assert!(
            err.message
                .contains("team, user, key, feature, model, provider, route")
        );
        let err = usage_query(&params(&[("limit", "ten")]), now).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("limit"));
        let err = usage_query(&params(&[("limit", "0")]), now).unwrap_err();
        assert!(err.message.contains("between 1 and"), "{}", err.message);
        assert!(usage_query(&params(&[("group_by", "key"), ("limit", "5")]), now).is_ok());
        let q = Ok(Query(params(&[("groupby", "team")])));
        let err = params_of(q, USAGE_PARAMS).unwrap_err();
        assert!(
            err.message.contains("use group_by, from, to, limit"),
            "{}",
            err.message
        );
    }
}

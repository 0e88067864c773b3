//! The format check: when a request asked for JSON (`response_format` `json_object`, or
//! `json_schema` with a schema), is the answer JSON, and does it match the schema? The pipeline
//! retries a failing call once through the route, then refuses the answer with an error that
//! says what was wrong.

use serde_json::Value;
use switchyard_wire::openai::{ChatCompletionRequest, ChatCompletionResponse};

/// What the request asked of the answer's format.
pub enum Wanted<'r> {
    Json,
    Schema(&'r Value),
}

/// The format `request` asks for, if it asks for JSON.
pub fn wanted(request: &ChatCompletionRequest) -> Option<Wanted<'_>> {
    let format = request.extra.get("response_format")?;
    match format.get("type").and_then(Value::as_str)? {
        "json_object" => Some(Wanted::Json),
        "json_schema" => Some(
            match format.get("json_schema").and_then(|s| s.get("schema")) {
                Some(schema) => Wanted::Schema(schema),
                None => Wanted::Json,
            },
        ),
        _ => None,
    }
}

/// Why the answer does not have the wanted format, if it does not. Tool calls are not checked:
/// an answer that calls a tool has no content to be JSON.
pub fn problem(wanted: &Wanted, response: &ChatCompletionResponse) -> Option<String> {
    for choice in &response.choices {
        if choice
            .message
            .tool_calls
            .as_ref()
            .is_some_and(|c| !c.is_empty())
        {
            continue;
        }
        let content = choice.message.content.as_deref().unwrap_or("");
        let value: Value = match serde_json::from_str(content.trim()) {
            Ok(v) => v,
            Err(e) => return Some(format!("the answer is not JSON ({e})")),
        };
        if let Wanted::Schema(schema) = wanted {
            let validator = match jsonschema::validator_for(schema) {
                Ok(v) => v,
                Err(e) => return Some(format!("the request's JSON schema is invalid ({e})")),
            };
            if let Some(error) = validator.iter_errors(&value).next() {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                return Some(format!(
                    "the answer does not match the schema at {at}: {error}"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(content: &str) -> ChatCompletionResponse {
        serde_json::from_value(json!({"id": "c", "object": "chat.completion", "created": 0,
            "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}]}))
        .unwrap()
    }

    #[test]
    fn json_and_schemas_are_checked() {
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [],
            "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": {
                "type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}}}
        }))
        .unwrap();
        let wanted = wanted(&request).unwrap();
        assert!(problem(&wanted, &answer(r#"{"age": 3}"#)).is_none());
        let wrong = problem(&wanted, &answer(r#"{"age": "three"}"#)).unwrap();
        assert!(wrong.contains("/age"), "{wrong}");
        assert!(
            problem(&wanted, &answer("Sure! {"))
                .unwrap()
                .contains("not JSON")
        );

        let plain: ChatCompletionRequest =
            serde_json::from_value(json!({"model": "m", "messages": []})).unwrap();
        assert!(super::wanted(&plain).is_none());
    }
}

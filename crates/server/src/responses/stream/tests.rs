//! The Responses event sequence the encoder writes, checked the way the openai SDK reads it.

use super::*;
use switchyard_wire::responses::ResponsesRequest;

fn meta() -> Meta {
    let req: ResponsesRequest = serde_json::from_value(json!({"model": "claude"})).unwrap();
    Meta::new(&req, 1)
}

fn events(frames: &[Bytes]) -> Vec<(String, Value)> {
    let text: String = frames
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let mut lines = f.lines();
            let name = lines
                .next()
                .unwrap()
                .trim_start_matches("event: ")
                .to_owned();
            let data = lines.next().unwrap().trim_start_matches("data: ");
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn chunk(v: Value) -> ChatCompletionChunk {
    serde_json::from_value(v).unwrap()
}

fn tool(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> ChatCompletionChunk {
    let mut call = json!({"index": index, "function": {"arguments": args}});
    if let (Some(id), Some(name)) = (id, name) {
        call["id"] = id.into();
        call["type"] = "function".into();
        call["function"]["name"] = name.into();
    }
    chunk(json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}))
}

#[test]
fn text_then_a_tool_call_make_the_responses_event_sequence() {
    let mut enc = Encoder::new(meta());
    let mut frames = vec![
        enc.chunk(&chunk(json!({"id": "c", "model": "claude-4", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}}]}))),
        enc.chunk(&chunk(
            json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "Check"}}]}),
        )),
        enc.chunk(&chunk(
            json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "ing."}}]}),
        )),
        enc.chunk(&tool(0, Some("call_1"), Some("weather"), "")),
        enc.chunk(&tool(0, None, None, "{\"city\":")),
        enc.chunk(&tool(0, None, None, "\"Paris\"}")),
        enc.chunk(&chunk(json!({"id": "c", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))),
        enc.chunk(&chunk(json!({"id": "c", "choices": [], "usage":
            {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}))),
    ];
    frames.push(enc.end());
    let all = events(&frames);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in all.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "{name}");
        assert_eq!(data["type"], name.as_str());
    }
    assert_eq!(all[0].1["response"]["model"], "claude-4");
    assert_eq!(all[0].1["response"]["status"], "in_progress");
    assert_eq!(all[6].1["text"], "Checking.");
    assert_eq!(all[8].1["item"]["content"][0]["text"], "Checking.");
    assert_eq!(all[9].1["item"]["call_id"], "call_1");
    assert_eq!(all[9].1["output_index"], 1);
    assert_eq!(all[12].1["arguments"], "{\"city\":\"Paris\"}");
    let done = &all[14].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][1]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done["output"][1]["status"], "completed");
    assert_eq!(done["usage"]["output_tokens"], 7);
    assert_eq!(enc.take_final().as_ref(), Some(done));
    assert!(enc.take_final().is_none(), "handed out once");
}

#[test]
fn a_length_finish_ends_with_response_incomplete() {
    let mut enc = Encoder::new(meta());
    let mut frames = vec![enc.chunk(&chunk(json!({"id": "c", "choices": [
        {"index": 0, "delta": {"content": "Once"}, "finish_reason": "length"}]})))];
    frames.push(enc.end());
    let all = events(&frames);
    let (name, last) = all.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
}

#[test]
fn a_failure_is_an_error_event_then_response_failed() {
    let mut enc = Encoder::new(meta());
    let first = enc.chunk(&chunk(
        json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
    ));
    let e = GatewayError::new(502, "upstream_error", "upstream_overloaded", "overloaded");
    let all = events(&[first, enc.fail(&e)]);
    let n = all.len();
    assert_eq!(all[n - 2].0, "error");
    assert_eq!(all[n - 2].1["message"], "overloaded");
    assert_eq!(all[n - 1].0, "response.failed");
    assert_eq!(all[n - 1].1["response"]["status"], "failed");
    assert_eq!(all[n - 1].1["sequence_number"], n - 1);
    assert!(enc.take_final().is_none(), "a failed response is not kept");
}

#[test]
fn native_frames_pass_as_they_came_and_the_final_response_is_picked_out() {
    let mut enc = Encoder::new(meta());
    let mut c = chunk(json!({"id": "r", "choices": []}));
    let created = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\"}}\n\n";
    c.native = Some(Bytes::from_static(created));
    assert_eq!(&enc.chunk(&c)[..], created);
    assert!(enc.take_final().is_none());
    let completed = b"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\"}}\n\n";
    c.native = Some(Bytes::from_static(completed));
    assert_eq!(&enc.chunk(&c)[..], completed);
    assert_eq!(enc.take_final().unwrap()["id"], "resp_1");
    assert!(
        enc.end().is_empty(),
        "the upstream's frames end the stream themselves"
    );
    let e = GatewayError::internal("cut");
    let error = events(&[enc.fail(&e)]);
    assert_eq!(
        error[0].1["sequence_number"], 2,
        "numbered after the upstream's frames"
    );
}

#[test]
fn an_empty_stream_is_still_a_whole_response() {
    let mut enc = Encoder::new(meta());
    let names: Vec<String> = events(&[enc.end()]).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
}

//! Requests: OpenAI chat → Anthropic Messages.

use super::*;

#[test]
fn system_and_developer_messages_become_top_level_system() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "system", "content": "You are a seasoned data scientist at a Fortune 500 company."},
            {"role": "developer", "content": "Answer in one paragraph."},
            {"role": "user", "content": "Analyze this dataset for anomalies."}
        ]
    }));
    assert_eq!(
        out["system"],
        json!([
            {"type": "text", "text": "You are a seasoned data scientist at a Fortune 500 company."},
            {"type": "text", "text": "Answer in one paragraph."}
        ])
    );
    // No system role inside `messages`: Anthropic has none.
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": "Analyze this dataset for anomalies."}])
    );

    // One plain system message is sent as a plain string.
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "system", "content": "You are concise."},
            {"role": "user", "content": "Hello"}
        ]
    }));
    assert_eq!(out["system"], "You are concise.");
}

#[test]
fn system_parts_keep_their_cache_control_marker() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "You are an AI assistant tasked with analyzing literary works.",
                 "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "user", "content": "Analyze the major themes in Pride and Prejudice."}
        ]
    }));
    assert_eq!(
        out["system"],
        json!([{
            "type": "text",
            "text": "You are an AI assistant tasked with analyzing literary works.",
            "cache_control": {"type": "ephemeral"}
        }])
    );
}

#[test]
fn multi_turn_conversation_is_the_documented_messages_array() {
    // The Messages API reference's multi-turn example.
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "Hello there."},
            {"role": "assistant", "content": "Hi, I'm Claude. How can I help you?"},
            {"role": "user", "content": "Can you explain LLMs in plain English?"}
        ]
    }));
    assert_eq!(
        out,
        json!({
            "model": "claude-opus-4-6",
            "max_tokens": 1024,
            "messages": [
                {"role": "user", "content": "Hello there."},
                {"role": "assistant", "content": "Hi, I'm Claude. How can I help you?"},
                {"role": "user", "content": "Can you explain LLMs in plain English?"}
            ]
        })
    );
}

#[test]
fn images_become_base64_or_url_sources() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
            {"type": "image_url", "image_url": {
                "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg",
                "detail": "high"
            }},
            {"type": "text", "text": "How are these images different?"}
        ]}]
    }));
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": [
            {"type": "image", "source": {
                "type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="
            }},
            {"type": "image", "source": {
                "type": "url",
                "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
            }},
            {"type": "text", "text": "How are these images different?"}
        ]}])
    );

    let png = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}]
    }));
    assert_eq!(
        png["messages"][0]["content"][0]["source"]["media_type"],
        "image/png"
    );
    assert_eq!(
        png["messages"][0]["content"][0]["source"]["data"],
        "iVBORw0KGgo="
    );
}

#[test]
fn an_image_that_is_neither_data_nor_http_is_refused_with_its_path() {
    let err = translate_err(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
            ]}
        ]
    }));
    assert!(err.contains("messages[2].content[1]"), "{err}");
}

/// The tool-use guide's `get_weather` tool, in OpenAI's shape.
fn weather_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA"
                    },
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The unit of temperature, either \"celsius\" or \"fahrenheit\""
                    }
                },
                "required": ["location"]
            }
        }
    })
}

fn with_tool_choice(tool_choice: Value) -> Value {
    translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "What is the weather like in San Francisco?"}],
        "tools": [weather_tool()],
        "tool_choice": tool_choice
    }))
}

#[test]
fn tools_become_name_description_input_schema() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "What is the weather like in San Francisco?"}],
        "tools": [
            weather_tool(),
            {"type": "function", "function": {"name": "get_time"}}
        ]
    }));
    assert_eq!(
        out["tools"],
        json!([
            {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "location": {
                            "type": "string",
                            "description": "The city and state, e.g. San Francisco, CA"
                        },
                        "unit": {
                            "type": "string",
                            "enum": ["celsius", "fahrenheit"],
                            "description": "The unit of temperature, either \"celsius\" or \"fahrenheit\""
                        }
                    },
                    "required": ["location"]
                }
            },
            // A function without parameters still gets the object schema Anthropic requires.
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert!(
        out.get("tool_choice").is_none(),
        "no tool_choice unless asked: {out}"
    );
}

#[test]
fn tool_choice_modes_map_to_anthropic_types() {
    assert_eq!(
        with_tool_choice(json!("auto"))["tool_choice"],
        json!({"type": "auto"})
    );
    assert_eq!(
        with_tool_choice(json!("none"))["tool_choice"],
        json!({"type": "none"})
    );
    assert_eq!(
        with_tool_choice(json!("required"))["tool_choice"],
        json!({"type": "any"})
    );
    assert_eq!(
        with_tool_choice(json!({"type": "function", "function": {"name": "get_weather"}}))["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    let err = translate_err(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [weather_tool()],
        "tool_choice": "sometimes"
    }));
    assert!(err.contains("tool_choice"), "{err}");
}

#[test]
fn parallel_tool_calls_false_disables_parallel_tool_use() {
    let base = json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Weather in SF and NYC?"}],
        "tools": [weather_tool()],
        "parallel_tool_calls": false
    });
    // Without a tool_choice: auto, with parallel use disabled.
    assert_eq!(
        translate(base.clone())["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    // Combined with the other choices.
    let mut required = base.clone();
    required["tool_choice"] = json!("required");
    assert_eq!(
        translate(required)["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    let mut named = base.clone();
    named["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    assert_eq!(
        translate(named)["tool_choice"],
        json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
    );
    // `parallel_tool_calls: true` (OpenAI's default) changes nothing.
    let mut parallel = base;
    parallel["parallel_tool_calls"] = json!(true);
    assert!(translate(parallel).get("tool_choice").is_none());
}

#[test]
fn a_tool_round_trip_becomes_tool_use_then_one_user_message_of_tool_results() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "user", "content": "What's the weather in SF and the time in LA?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                 "function": {"name": "get_weather",
                              "arguments": "{\"location\": \"San Francisco, CA\", \"unit\": \"celsius\"}"}},
                {"id": "toolu_02B19r91rx91mr928946mr0", "type": "function",
                 "function": {"name": "get_time", "arguments": "{\"timezone\":\"America/Los_Angeles\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
            {"role": "tool", "tool_call_id": "toolu_02B19r91rx91mr928946mr0", "content": "9:41 AM"}
        ],
        "tools": [weather_tool()]
    }));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "What's the weather in SF and the time in LA?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                 "input": {"location": "San Francisco, CA", "unit": "celsius"}},
                {"type": "tool_use", "id": "toolu_02B19r91rx91mr928946mr0", "name": "get_time",
                 "input": {"timezone": "America/Los_Angeles"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                 "content": "15 degrees"},
                {"type": "tool_result", "tool_use_id": "toolu_02B19r91rx91mr928946mr0",
                 "content": "9:41 AM"}
            ]}
        ])
    );
}

#[test]
fn assistant_text_is_kept_before_its_tool_use_and_a_following_user_turn_joins_the_results() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "user", "content": "What is the weather like in San Francisco?"},
            {"role": "assistant", "content": "I'll check the current weather in San Francisco for you.",
             "tool_calls": [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                             "function": {"name": "get_weather", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
            {"role": "user", "content": "And in Celsius?"}
        ]
    }));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "What is the weather like in San Francisco?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
                // Empty arguments are an empty input object.
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                 "input": {}}
            ]},
            // Anthropic wants strictly alternating roles: the result and the next user turn share
            // one user message, the tool_result first.
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                 "content": "15 degrees"},
                {"type": "text", "text": "And in Celsius?"}
            ]}
        ])
    );
}

#[test]
fn invalid_tool_call_arguments_are_refused_with_their_path() {
    let err = translate_err(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{}"}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\": \"San Fra"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "foggy"}
        ]
    }));
    assert!(
        err.contains("messages[1].tool_calls[1].function.arguments"),
        "the error names the offending field: {err}"
    );
}

#[test]
fn a_tool_message_without_tool_call_id_is_refused() {
    let err = translate_err(json!({
        "model": "claude-opus-4-6",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "tool", "content": "sunny"}
        ]
    }));
    assert!(
        err.contains("messages[1]") && err.contains("tool_call_id"),
        "{err}"
    );
}

#[test]
fn stop_becomes_stop_sequences() {
    let one = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Count to ten"}],
        "stop": "\n\nHuman:"
    }));
    assert_eq!(one["stop_sequences"], json!(["\n\nHuman:"]));
    assert!(one.get("stop").is_none());

    let many = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Count to ten"}],
        "stop": ["five", "END"]
    }));
    assert_eq!(many["stop_sequences"], json!(["five", "END"]));
}

#[test]
fn max_tokens_gets_a_default_and_max_completion_tokens_wins() {
    let absent = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}]
    }));
    assert_eq!(absent["max_tokens"], DEFAULT_MAX_TOKENS);

    let old = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 256
    }));
    assert_eq!(old["max_tokens"], 256);

    let both = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 256,
        "max_completion_tokens": 1024
    }));
    assert_eq!(both["max_tokens"], 1024);
    assert!(both.get("max_completion_tokens").is_none());
}

#[test]
fn temperature_is_clamped_to_anthropics_range() {
    let hot = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 1.7,
        "top_p": 0.7
    }));
    assert_eq!(hot["temperature"], 1.0);
    assert_eq!(hot["top_p"], 0.7);

    let normal = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.2
    }));
    assert_eq!(normal["temperature"], 0.2);
}

#[test]
fn openai_only_fields_are_dropped_and_anthropic_only_ones_pass() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "logit_bias": {"50256": -100},
        "seed": 7,
        "frequency_penalty": 0.5,
        "logprobs": true,
        "user": "user-1234",
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }));
    assert_eq!(
        out,
        json!({
            "model": "claude-opus-4-6",
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": true,
            "metadata": {"user_id": "user-1234"},
            "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 2048}
        })
    );
}

/// `n > 1` is refused before translating (`params::refuse_unsupported`), unless the route or
/// model drops it; the translation itself never sends it.
#[test]
fn n_is_never_sent() {
    let out = translate(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "n": 2
    }));
    assert!(out.get("n").is_none(), "{out}");
}

#[test]
fn a_request_of_only_system_messages_is_refused() {
    let err = translate_err(json!({
        "model": "claude-opus-4-6",
        "messages": [{"role": "system", "content": "You are concise."}]
    }));
    assert!(err.contains("messages"), "{err}");
}

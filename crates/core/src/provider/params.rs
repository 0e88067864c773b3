//! Parameters a provider cannot honour. An adapter that translates lists the request fields its
//! upstream has no equivalent for; a request that sets one is refused with a 400 that names the
//! parameter and the provider, never silently changed, unless the route or the model says
//! `drop_unsupported_params: true` (the translation then leaves them out).

use switchyard_wire::openai::ChatCompletionRequest;

use super::Deployment;
use crate::error::{ErrorClass, ProviderError};

/// Refuses `request` if it sets one of `names` (top-level fields), or if its native body asks
/// for something the canonical request cannot carry ([`Origin::untranslated`]), unless dropping
/// is allowed. Adapters call it only when they translate; one that sends the native body
/// honours everything in it.
///
/// [`Origin::untranslated`]: switchyard_wire::openai::Origin::untranslated
/// A field counts as set unless it is absent, null or `false`; `n` only above 1.
/// `vendor` is how the client knows the provider's API ("Anthropic", "Gemini", "Bedrock").
pub fn refuse_unsupported(
    request: &ChatCompletionRequest,
    deployment: &Deployment,
    vendor: &str,
    names: &[&str],
) -> Result<(), ProviderError> {
    if deployment.drop_unsupported_params || request.origin.drop_unsupported_params {
        return Ok(());
    }
    let untranslated = request.origin.untranslated.first().map(String::as_str);
    let Some(name) = untranslated.or_else(|| names.iter().copied().find(|n| is_set(request, n)))
    else {
        return Ok(());
    };
    let mut e = ProviderError::new(
        ErrorClass::InvalidRequest,
        &deployment.provider_name,
        format!(
            "parameter \"{name}\" is not supported by {vendor} (model \"{}\", provider \"{}\"): remove it, or set drop_unsupported_params: true on the route or the model to have it dropped",
            deployment.name, deployment.provider_name
        ),
    );
    e.upstream_code = Some("unsupported_parameter".into());
    Err(e)
}

fn is_set(request: &ChatCompletionRequest, name: &str) -> bool {
    match name {
        "n" => request.n.is_some_and(|n| n > 1),
        "parallel_tool_calls" => request.parallel_tool_calls.is_some(),
        "stop" => request.stop.is_some(),
        "top_p" => request.top_p.is_some(),
        _ => request
            .extra
            .get(name)
            .is_some_and(|v| !v.is_null() && v != &serde_json::Value::Bool(false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn deployment(drop: bool) -> Deployment {
        Deployment {
            name: "claude".into(),
            provider_name: "anthropic".into(),
            provider: Arc::new(super::super::mock::MockProvider::new(
                "m",
                Default::default(),
            )),
            upstream_model: "claude".into(),
            price: Default::default(),
            context_window: None,
            default_max_tokens: 1024,
            capabilities: Vec::new(),
            drop_unsupported_params: drop,
            tags: Vec::new(),
        }
    }

    fn request(body: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_set_parameter_is_refused_by_name_unless_dropping_is_allowed() {
        let names = ["n", "logprobs", "seed"];
        let base = serde_json::json!({"model": "claude", "messages": []});
        let ok = |body: serde_json::Value, drop: bool| {
            refuse_unsupported(&request(body), &deployment(drop), "Anthropic", &names)
        };
        assert!(ok(base.clone(), false).is_ok());
        let mut with_n = base.clone();
        with_n["n"] = 1.into();
        assert!(
            ok(with_n.clone(), false).is_ok(),
            "n = 1 asks nothing special"
        );
        with_n["n"] = 2.into();
        let e = ok(with_n.clone(), false).unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert!(
            e.message.contains("\"n\"") && e.message.contains("Anthropic"),
            "{}",
            e.message
        );
        assert!(ok(with_n, true).is_ok());

        let mut logprobs = base.clone();
        logprobs["logprobs"] = false.into();
        assert!(ok(logprobs.clone(), false).is_ok());
        logprobs["logprobs"] = true.into();
        assert!(
            ok(logprobs.clone(), false)
                .unwrap_err()
                .message
                .contains("logprobs")
        );

        let mut on_route = request(logprobs);
        on_route.origin.drop_unsupported_params = true;
        assert!(refuse_unsupported(&on_route, &deployment(false), "Anthropic", &names).is_ok());
    }
}

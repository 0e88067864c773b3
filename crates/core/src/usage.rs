//! Usage and cost: what a call consumed, in tokens, and what it cost, in USD, from the price
//! table of the config.
//!
//! Providers report usage and that report is authoritative. When a provider reports none (some
//! OpenAI-compatible servers, a stream cut short), the tokens are estimated at four characters
//! per token and the record says it was estimated.

use switchyard_wire::openai::{ChatCompletionRequest, MessageContent, Usage};

use crate::config::Price;

/// Prompt tokens, estimated from the characters of the messages and tool definitions.
pub fn estimate_prompt_tokens(request: &ChatCompletionRequest) -> u64 {
    let mut chars = 0usize;
    for m in &request.messages {
        chars += 4; // role and framing
        match &m.content {
            Some(MessageContent::Text(t)) => chars += t.len(),
            Some(MessageContent::Parts(parts)) => {
                for p in parts {
                    // An image costs on the order of a thousand tokens whatever its bytes.
                    chars += p.text.as_ref().map_or(4000, String::len);
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            chars += call.function.name.len() + call.function.arguments.len();
        }
    }
    for t in request.tools.iter().flatten() {
        chars += t.function.name.len()
            + t.function.description.as_ref().map_or(0, String::len)
            + t.function
                .parameters
                .as_ref()
                .map_or(0, |p| p.to_string().len());
    }
    chars.div_ceil(4) as u64
}

/// Output tokens, estimated from generated text.
pub fn estimate_completion_tokens(generated_chars: usize) -> u64 {
    generated_chars.div_ceil(4) as u64
}

/// USD for a usage at a price (USD per million tokens). Cached prompt tokens are charged at the
/// cached price, the rest of the prompt at the input price.
pub fn cost_usd(usage: &Usage, price: &Price) -> f64 {
    let cached = usage.cached_tokens().min(usage.prompt_tokens);
    let uncached = usage.prompt_tokens - cached;
    let cached_price = price.cached_input.unwrap_or(price.input);
    (uncached as f64 * price.input
        + cached as f64 * cached_price
        + usage.completion_tokens as f64 * price.output)
        / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_charges_cached_tokens_at_the_cached_price() {
        let price = Price {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
        };
        let usage = Usage::new(1_000_000, 100_000, Some(400_000));
        // 600k × $3 + 400k × $0.3 + 100k × $15 = 1.8 + 0.12 + 1.5
        assert!((cost_usd(&usage, &price) - 3.42).abs() < 1e-9);
    }
}

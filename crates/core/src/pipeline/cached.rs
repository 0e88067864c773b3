//! The cache stage of a chat call: looks the request up after the input guardrails, serves a hit
//! (as a stream when the client asked for one) recorded with the cost it saved, and keeps the
//! answer to a miss once it has passed the output guardrails.

use std::sync::{Arc, LazyLock};

use memchr::memmem::Finder;

use switchyard_wire::openai::{ChatCompletionRequest, ChatCompletionResponse};

use super::{Admitted, ChatOutcome, Gateway, Ledger, Runtime, Served};
use crate::admit::RateInfo;
use crate::cache::replay::{StreamCapture, stream_of};
use crate::cache::{Asker, CacheStatus, CachedAnswer, Lookup, Pending, encode_answer};
use crate::guard::Screen;
use crate::provider::{BodyKind, RawResponse};
use crate::request::RequestContext;
use crate::usage;

/// What the cache stage decided for a request that goes on to a provider.
#[derive(Default)]
pub(super) struct CacheMiss {
    /// Where its answer goes, when it is to be kept.
    pub pending: Option<Pending>,
    /// For `x-switchyard-cache`; `None` when the cache is off for the route.
    pub status: Option<CacheStatus>,
}

impl Gateway {
    /// The cache stage: a hit is the outcome; a miss says where the answer goes.
    pub(super) async fn look_up(
        &self,
        runtime: &Runtime,
        ctx: &RequestContext,
        request: &ChatCompletionRequest,
        ledger: &mut Ledger,
        admitted: &Admitted,
    ) -> Result<CacheMiss, Box<ChatOutcome>> {
        let config = &runtime.config;
        let route = config.routes.get(&request.model);
        let asker = Asker {
            team: ledger.record.team.as_deref(),
            key_id: ledger.record.key_id.as_deref(),
            headers: &ctx.headers,
            dialect: ctx.dialect,
        };
        let lookup = (self.cache)
            .lookup(
                &config.cache,
                route.and_then(|r| r.cache.as_ref()),
                request,
                &asker,
            )
            .await;
        match lookup {
            Lookup::Off => Ok(CacheMiss::default()),
            Lookup::Bypass => Ok(CacheMiss {
                pending: None,
                status: Some(CacheStatus::Bypass),
            }),
            Lookup::Miss(pending) => Ok(CacheMiss {
                pending: Some(pending),
                status: Some(CacheStatus::Miss),
            }),
            Lookup::Hit(answer, status) => {
                match self.serve_hit(runtime, request, ledger, admitted, &answer, status) {
                    Some(outcome) => Err(Box::new(outcome)),
                    None => Ok(CacheMiss {
                        pending: None,
                        status: Some(CacheStatus::Miss),
                    }),
                }
            }
        }
    }

    /// A cached answer as the request's outcome, recorded as a hit with what it saved: its usage
    /// at the dearest price the route could have paid (the cache does not know which target
    /// would have served).
    fn serve_hit(
        &self,
        runtime: &Runtime,
        request: &ChatCompletionRequest,
        ledger: &mut Ledger,
        admitted: &Admitted,
        answer: &CachedAnswer,
        status: CacheStatus,
    ) -> Option<ChatOutcome> {
        let raw = RawResponse {
            body: answer.body.clone(),
            usage: answer.usage.clone(),
            kind: answer.kind,
        };
        // A stream is played from the decoded answer; only answers that decoded were kept, so
        // one that does not now was damaged in the store: a miss.
        let decoded = match request.is_stream().then(|| raw.decode()) {
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a cached answer does not decode: served from upstream");
                return None;
            }
            Some(Ok(response)) => Some(response),
            None => None,
        };
        ledger.record.cache_hit = true;
        if let (Some(u), Some(price)) =
            (&answer.usage, runtime.router.price_ceiling(&request.model))
        {
            ledger.record.cache_saved_usd = usage::cost_usd(u, &price);
        }
        let served = admitted.serve(Served {
            provider: "cache".into(),
            model: answer.model.clone(),
            attempts: 0,
            fallback_path: Vec::new(),
            rate: RateInfo::default(),
            downgraded_from: None,
            cache: Some(status),
        });
        let Some(response) = decoded else {
            return Some(ChatOutcome::Raw(raw, served));
        };
        let estimate = answer.usage.as_ref().map_or(0, |u| u.prompt_tokens);
        let wants_usage = request.wants_stream_usage();
        let stream = stream_of(&response);
        let screen = Screen::none();
        Some(ChatOutcome::Stream(
            stream,
            served,
            wants_usage,
            estimate,
            screen,
            None,
        ))
    }

    /// Keeps a complete, successful answer; answers filtered for content are never kept.
    pub(super) fn keep_answer(&self, pending: Option<Pending>, response: &ChatCompletionResponse) {
        let Some(pending) = pending else { return };
        let filtered = response
            .choices
            .iter()
            .any(|c| c.finish_reason.as_deref() == Some("content_filter"));
        if filtered || response.choices.is_empty() {
            return;
        }
        if let Some(answer) = encoded(response) {
            self.cache.store(pending, answer);
        }
    }

    /// Keeps an answer forwarded as the upstream sent it.
    pub(super) fn keep_raw(&self, pending: Option<Pending>, raw: &RawResponse, model: &str) {
        let Some(pending) = pending else { return };
        // A content filter or an Anthropic refusal says so in the body; not worth decoding it
        // to be sure (OpenAI's `"refusal": null` is no refusal). The finders are built once:
        // building one costs more than searching a short answer with it.
        static FLAGS: LazyLock<[Finder<'static>; 2]> = LazyLock::new(|| {
            [
                Finder::new(b"\"content_filter\""),
                Finder::new(b"\"stop_reason\":\"refusal\""),
            ]
        });
        let flagged = FLAGS.iter().any(|f| f.find(&raw.body).is_some());
        if flagged {
            return;
        }
        let encoded = encode_answer(raw.kind, model, raw.usage.as_ref(), &raw.body);
        self.cache.store(pending, encoded);
    }
}

/// A decoded answer as the cache keeps it: a chat completion's JSON.
fn encoded(response: &ChatCompletionResponse) -> Option<Vec<u8>> {
    let body = serde_json::to_vec(response).ok()?;
    let usage = response.usage.as_ref();
    let kind = BodyKind::ChatCompletion;
    Some(encode_answer(kind, &response.model, usage, &body))
}

/// A miss whose answer streams: what the stream hands the cache when it ends well.
pub struct StreamKeeper {
    cache: Arc<crate::cache::Cache>,
    pending: Pending,
    capture: StreamCapture,
}

impl StreamKeeper {
    pub(super) fn new(cache: Arc<crate::cache::Cache>, pending: Pending) -> StreamKeeper {
        StreamKeeper {
            cache,
            pending,
            capture: StreamCapture::default(),
        }
    }

    pub(crate) fn add(&mut self, chunk: &switchyard_wire::openai::ChatCompletionChunk) {
        self.capture.add(chunk);
    }

    /// The stream ended well: keep the answer it carried, with its usage.
    pub(crate) fn finish(self: Box<Self>, usage: Option<&switchyard_wire::openai::Usage>) {
        let mut capture = self.capture;
        capture.set_usage(usage);
        let Some(response) = capture.finish() else {
            return;
        };
        if let Some(answer) = encoded(&response) {
            self.cache.store(self.pending, answer);
        }
    }
}

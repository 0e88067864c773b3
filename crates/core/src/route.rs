//! Route: turns the model name a client asked for into a [`Plan`], the ordered list of
//! deployments to try. A name is either a route (an alias with a strategy and targets) or a
//! model of the config. Unknown names get an error that lists what exists.
//!
//! Deployments that cannot serve the request (an embeddings-only model for a chat call, a model
//! without vision for a request with images) are left out of the plan. The executor walks the
//! plan; health (breakers, cooldowns) and the smarter strategies plug in here.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Capability, Config, Strategy};
use crate::error::GatewayError;
use crate::provider::Deployment;

pub struct Router {
    models: HashMap<String, Arc<Deployment>>,
    routes: HashMap<String, Route>,
}

struct Route {
    #[allow(dead_code)] // read by the strategies that come with the routing work
    strategy: Strategy,
    targets: Vec<Arc<Deployment>>,
}

/// The deployments to try for one request, in order.
#[derive(Clone)]
pub struct Plan {
    /// The route name when the client asked for an alias.
    pub route: Option<String>,
    pub targets: Vec<Arc<Deployment>>,
}

impl Router {
    pub fn new(config: &Config, deployments: Vec<Arc<Deployment>>) -> Router {
        let models: HashMap<String, Arc<Deployment>> = deployments
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        let routes = config
            .routes
            .iter()
            .map(|(name, r)| {
                let targets = r
                    .targets
                    .iter()
                    .filter_map(|t| models.get(t).cloned())
                    .collect();
                (
                    name.clone(),
                    Route {
                        strategy: r.strategy,
                        targets,
                    },
                )
            })
            .collect();
        Router { models, routes }
    }

    /// Every name a client can ask for, routes first, sorted.
    pub fn names(&self) -> (Vec<&str>, Vec<&str>) {
        let mut routes: Vec<&str> = self.routes.keys().map(String::as_str).collect();
        let mut models: Vec<&str> = self.models.keys().map(String::as_str).collect();
        routes.sort_unstable();
        models.sort_unstable();
        (routes, models)
    }

    /// The plan for `requested`, keeping only deployments that have every capability in `needs`.
    pub fn plan(&self, requested: &str, needs: &[Capability]) -> Result<Plan, GatewayError> {
        let (route, candidates): (Option<String>, Vec<Arc<Deployment>>) =
            if let Some(r) = self.routes.get(requested) {
                (Some(requested.to_owned()), r.targets.clone())
            } else if let Some(d) = self.models.get(requested) {
                (None, vec![d.clone()])
            } else {
                return Err(self.unknown(requested));
            };
        let targets: Vec<Arc<Deployment>> = candidates
            .into_iter()
            .filter(|d| needs.iter().all(|c| d.can(*c)))
            .collect();
        if targets.is_empty() {
            let needs: Vec<String> = needs
                .iter()
                .map(|c| format!("{c:?}").to_lowercase())
                .collect();
            return Err(GatewayError::invalid_request(
                "model_not_capable",
                format!(
                    "model \"{requested}\" cannot serve this request: it needs {}; check the model's capabilities in the config",
                    needs.join(", ")
                ),
            )
            .with_param("model"));
        }
        Ok(Plan { route, targets })
    }

    fn unknown(&self, requested: &str) -> GatewayError {
        let (routes, models) = self.names();
        let mut available: Vec<&str> = routes.into_iter().chain(models).collect();
        let more = available.len().saturating_sub(30);
        available.truncate(30);
        let mut list = available.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more (GET /v1/models lists them all)"));
        }
        GatewayError::new(
            404,
            "invalid_request_error",
            "model_not_found",
            format!("the model \"{requested}\" does not exist; available: {list}"),
        )
        .with_param("model")
    }
}

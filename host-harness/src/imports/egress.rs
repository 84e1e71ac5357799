//! The sandbox's network policy: the guest reaches only the sites of the installations it looked
//! up during the current call, with the same scheme, host and port as their base URL.

use url::Url;

use crate::wit::jira_sync::plugin::http::Error as HttpError;

/// The origins the guest may reach in this call.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allowed: Vec<url::Origin>,
}

impl Egress {
    /// Allows the origin of `base_url`; an unparsable base URL allows nothing.
    pub fn allow(&mut self, base_url: &str) {
        if let Ok(url) = Url::parse(base_url) {
            let origin = url.origin();
            if origin.is_tuple() && !self.allowed.contains(&origin) {
                self.allowed.push(origin);
            }
        }
    }

    /// `Ok` when `url` is http(s) on an allowed origin; `denied` or `invalid-request` otherwise.
    pub fn check(&self, url: &str) -> Result<(), HttpError> {
        let url = Url::parse(url).map_err(|e| HttpError::InvalidRequest(format!("{url}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Denied(format!(
                "scheme `{}` is not allowed",
                url.scheme()
            )));
        }
        let origin = url.origin();
        if self.allowed.contains(&origin) {
            Ok(())
        } else {
            Err(HttpError::Denied(format!(
                "{} is not the site of an installation of this call",
                origin.ascii_serialization()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_installation_origin_passes() {
        let mut egress = Egress::default();
        assert!(egress.check("https://acme.atlassian.net/rest").is_err());
        egress.allow("https://acme.atlassian.net/jira");
        assert!(
            egress
                .check("https://acme.atlassian.net/rest/api/2/status")
                .is_ok()
        );
        assert!(egress.check("https://acme.atlassian.net:443/x").is_ok());
        for denied in [
            "http://acme.atlassian.net/x",
            "https://acme.atlassian.net:8443/x",
            "https://evil.example/x",
            "https://acme.atlassian.net.evil.example/x",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(egress.check(denied), Err(HttpError::Denied(_))),
                "{denied}"
            );
        }
        assert!(matches!(
            egress.check("not a url"),
            Err(HttpError::InvalidRequest(_))
        ));
    }
}

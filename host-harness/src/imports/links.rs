//! `links`: the guest removes the links to an issue Jira deleted, or moves them to the key of an
//! issue Jira moved (docs/behaviour.md#1.8); the changes are staged until the call succeeds.

use super::CallState;
use super::record::LinkChange;
use crate::backends::Effect;
use crate::wit::jira_sync::plugin::links;

impl links::Host for CallState {
    async fn remove(&mut self, client_key: String, issue_key: String) -> wasmtime::Result<u32> {
        if !self.own(&client_key, "links.remove") {
            return Ok(0);
        }
        let groups = self
            .linked_groups(&client_key, &issue_key)
            .await
            .map_err(|e| self.fail(e))?;
        self.staged.push(Effect::Unlink {
            issue: (client_key, issue_key.clone()),
        });
        self.record.links.push(LinkChange {
            issue_key,
            renamed_to: None,
            groups: groups.clone(),
        });
        Ok(groups.len() as u32)
    }

    async fn rename(
        &mut self,
        client_key: String,
        from: String,
        to: String,
    ) -> wasmtime::Result<u32> {
        if !self.own(&client_key, "links.rename") {
            return Ok(0);
        }
        let groups = self
            .linked_groups(&client_key, &from)
            .await
            .map_err(|e| self.fail(e))?;
        if from != to {
            self.staged.push(Effect::Rename {
                issue: (client_key, from.clone()),
                to: to.clone(),
            });
        }
        self.record.links.push(LinkChange {
            issue_key: from,
            renamed_to: Some(to),
            groups: groups.clone(),
        });
        Ok(groups.len() as u32)
    }
}

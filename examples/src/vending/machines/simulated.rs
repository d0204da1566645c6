//! Machines simulated in process: each answers after the behaviour's latency, signing its result
//! with its secret when it has one (as a real machine would).

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::signing::sign_result;
use super::{LinkError, MachineLink, Received, SimBehaviour, VendCommand};
use crate::vending::db::VendingDb;

/// Machines simulated in process.
#[derive(Debug, Clone)]
pub struct SimulatedMachines {
    behaviour: SimBehaviour,
    results: mpsc::Sender<Received>,
    secrets: VendingDb,
}

impl SimulatedMachines {
    /// Machines that answer on `results`, with the secrets kept in `secrets`.
    pub fn new(
        behaviour: SimBehaviour,
        results: mpsc::Sender<Received>,
        secrets: VendingDb,
    ) -> Self {
        SimulatedMachines {
            behaviour,
            results,
            secrets,
        }
    }
}

#[async_trait]
impl MachineLink for SimulatedMachines {
    async fn vend_out(&self, command: &VendCommand) -> Result<(), LinkError> {
        let this = self.clone();
        let command = command.clone();
        tokio::spawn(async move {
            let mut result = this.behaviour.answer(&command).await;
            match this.secrets.machine_secret(&command.inner_code).await {
                Ok(Some(secret)) => sign_result(
                    &secret,
                    &mut result,
                    &command.inner_code,
                    crate::clock::unix_now(),
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "simulated machine: secret unavailable"),
            }
            let _ = this
                .results
                .send(Received {
                    machine: command.inner_code.clone(),
                    result,
                })
                .await;
        });
        Ok(())
    }
}

//! `stephost:step/egress`: the host's reason for the request a step last
//! saw refused, for HTTP clients that get only a wasi:http error code.
//! Components built before the interface joined the step world import the
//! same function as `stephost:step-js/egress@0.1.0`: both names are linked.

use crate::egress::EgressHook;
use crate::runtime::bindings::stephost::step::egress::{self, Host};
use crate::runtime::state::StepState;
use wasmtime::component::{HasSelf, Linker};

/// The name JS components built against the first `stephost:step-js`
/// world import the function under.
const LEGACY_JS_INTERFACE: &str = "stephost:step-js/egress@0.1.0";

impl Host for EgressHook {
    fn last_refusal(&mut self) -> Option<String> {
        self.take_last_refusal()
    }
}

/// Links `last-refusal` under the step world's name and the legacy JS one.
pub(crate) fn add_to_linker(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    egress::add_to_linker::<_, HasSelf<EgressHook>>(linker, |state| &mut state.egress)?;
    linker.instance(LEGACY_JS_INTERFACE)?.func_wrap(
        "last-refusal",
        |mut store: wasmtime::StoreContextMut<'_, StepState>, (): ()| {
            Ok((Host::last_refusal(&mut store.data_mut().egress),))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::Component;

    /// A component importing `last-refusal` under `interface`, nothing else.
    fn importing(interface: &str) -> String {
        format!(
            r#"(component (import "{interface}" (instance (export "last-refusal" (func (result (option string)))))))"#
        )
    }

    #[test]
    fn components_built_against_either_name_of_the_egress_interface_link() {
        let engine = crate::runtime::engine::build_engine(1, None).unwrap();
        let mut linker = Linker::<StepState>::new(&engine);
        add_to_linker(&mut linker).unwrap();
        for interface in ["stephost:step/egress@0.1.0", LEGACY_JS_INTERFACE] {
            let component = Component::new(&engine, importing(interface)).unwrap();
            linker.instantiate_pre(&component).unwrap_or_else(|e| panic!("{interface}: {e:#}"));
        }
        let unknown = Component::new(&engine, importing("stephost:step-js/nothing@0.1.0")).unwrap();
        assert!(linker.instantiate_pre(&unknown).is_err(), "the check tells linked from unlinked");
    }
}

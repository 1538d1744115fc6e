//! Host-side bindings of the `stephost:step` world, generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "step",
    imports: {
        "stephost:step/flow.export": trappable,
        "stephost:step/flow.exit": trappable,
    },
    exports: { default: async },
});

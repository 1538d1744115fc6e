# Node.js/npm and Python/pip, from Debian when missing: JavaScript and
# Python steps are built with them (`stephost build` then installs
# componentize-js and componentize-py from the npm and PyPI registries on
# first use), and the benchmark's Node.js peers run on node.
install_language_toolchains() {
    local missing=()
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
    command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || missing+=(python3 python3-pip)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (for JavaScript and Python steps)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"
    fi
}

# Debian's Chromium and the playwright-core driver for the inspector's
# browser test (tests/e2e/browser.rs runs tests/browser/inspector.mjs):
# Chromium from Debian when /usr/bin/chromium is missing (no browser build
# is downloaded: playwright-core drives the system's), playwright-core at
# the version tests/browser/package-lock.json pins, into
# target/tools/browser/ when missing or at another version.
install_browser() {
    if [ ! -x /usr/bin/chromium ]; then
        echo "installing chromium (for the inspector's browser test)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium
    fi
    local tools=target/tools/browser
    if ! cmp -s tests/browser/package-lock.json "$tools/package-lock.json" \
        || [ ! -f "$tools/node_modules/playwright-core/package.json" ]; then
        echo "installing playwright-core into $tools (for the inspector's browser test)"
        mkdir -p "$tools"
        cp tests/browser/package.json tests/browser/package-lock.json "$tools/"
        (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

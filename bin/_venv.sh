# Sourced by bin/test and bin/demo: create or reuse .venv in the repository and install the
# project into it, editable, with the extras named as arguments ("" for none).
# Debian's system Python refuses `pip install` outside a virtualenv, hence .venv.

say() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "needs root: $*" >&2
        return 1
    fi
}

apt_install() {
    say "installing $* (apt-get)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

ensure_venv() {
    local extras=$1 python=${PYTHON:-python3} stamp digest spec
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$python is older than Python 3.11 (set PYTHON=/path/to/python3.11 or newer)" >&2
            return 1
        fi
        if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
            apt_install python3-venv
        fi
        say "creating virtualenv .venv ($("$python" --version))"
        rm -rf .venv
        "$python" -m venv .venv
    fi
    # Reinstall only when the packaging files changed since the last install of these extras.
    digest=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
    stamp=".venv/.installed${extras:+-$extras}"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
        spec=.${extras:+[$extras]}
        say "installing the project into .venv (pip install -e '$spec')"
        PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install --quiet -e "$spec"
        echo "$digest" >"$stamp"
        echo "$digest" >.venv/.installed  # the extras came with the project itself
    fi
}

# The bastion as a container: Debian 12's Python, the wheel in a venv, a non-root
# user, state (keys, database, recordings) in a volume.
#
# No Docker engine runs where this project is built and tested, so this file is
# never built by CI. Instead its install steps are CI's: the three RUN lines that
# make the venv, build the wheel and install it are, character for character,
# the lines of step 2 of .ci/run, which CI runs on every change (in a fresh venv,
# followed by `bastion init` and `bastion demo --script` from it), and
# tests/bastion/test_packaging.py fails if the two drift apart.
#
#   docker build -t bastion .
#   docker run -d --name bastion -p 2222:2222 -p 127.0.0.1:9120:9120 \
#       -v bastion-state:/var/lib/bastion -e BASTION_HOST_NAMES=bastion.example.com bastion
FROM debian:12-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /home/bastion --shell /usr/sbin/nologin bastion \
 && mkdir -p /var/lib/bastion && chown bastion:bastion /var/lib/bastion && chmod 700 /var/lib/bastion

COPY pyproject.toml README.md /src/
COPY bastion /src/bastion
COPY recorder /src/recorder
COPY rules /src/rules

# .ci/run step 2, the same three lines (CI sets VENV, DIST and SRC to its own places).
ENV VENV=/opt/bastion DIST=/tmp/dist SRC=/src
RUN python3 -m venv "$VENV"
RUN "$VENV/bin/pip" wheel --quiet --no-deps --wheel-dir "$DIST" "$SRC"
RUN "$VENV/bin/pip" install --quiet "$DIST"/bastion-*.whl
RUN rm -rf "$DIST" "$SRC"

ENV PATH=/opt/bastion/bin:$PATH \
    BASTION_HOME=/var/lib/bastion \
    BASTION_LOG_FORMAT=json \
    BASTION_METRICS=0.0.0.0:9120
VOLUME ["/var/lib/bastion"]
USER bastion
WORKDIR /home/bastion
EXPOSE 2222 9120
# Ready = the store and the recordings directory take writes and the CA keys are loaded.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9120/readyz', timeout=4)"]
# BASTION_HOST_NAMES (space-separated) become principals of the bastion's host
# certificate, as `--host-name` would; the first start creates the state.
ENTRYPOINT ["bastion", "serve", "--init", "--listen", "0.0.0.0:2222"]

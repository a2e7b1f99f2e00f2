# The bastion as a container: state (keys, database, recordings) lives in a volume.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /home/bastion --shell /usr/sbin/nologin bastion \
 && mkdir -p /var/lib/bastion && chown bastion:bastion /var/lib/bastion && chmod 700 /var/lib/bastion

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bastion ./bastion
COPY recorder ./recorder
COPY rules ./rules
RUN pip install --no-cache-dir . && rm -rf /src

ENV BASTION_HOME=/var/lib/bastion
VOLUME ["/var/lib/bastion"]
USER bastion
WORKDIR /home/bastion
EXPOSE 2222
ENTRYPOINT ["bastion", "serve", "--init", "--listen", "0.0.0.0:2222"]

"""An authenticating reverse proxy in front of a server whose own key check leaves paths open.

vLLM's ``--api-key`` guards ``/v1/*`` only: ``/metrics``, ``/tokenize``, ``/version`` and friends
answer anyone. An externally exposed vLLM is therefore published through this sidecar, the only
port its load balancer reaches: nginx (pinned official image) answers 401 to any request on any path
without ``Authorization: Bearer <key>``, and streams the rest to the server on localhost with
buffering off (SSE). Why nginx and not Gateway + IAP: IAP authenticates Google identities, which a
benchmark client (or any OpenAI SDK) does not carry; a bearer key is what these clients send.

The key never appears in the ConfigMap or the pod spec: the official image renders
``/etc/nginx/templates/*.template`` with ``envsubst`` at start, and ``API_KEY`` comes from the
Secret. Probes and the Managed Prometheus scrape reach the server's own port inside the cluster.
"""

from __future__ import annotations

from typing import Any

from .base import SecretRefs, container_port, secret_env

IMAGE = "nginx:1.27.3-alpine"  # pinned: the official image, with the envsubst template step
PORT = 8443
PORT_NAME = "proxy"
TEMPLATE_DIR = "/etc/nginx/templates"
VOLUME = "auth-proxy-config"


def nginx_template(upstream_port: int) -> str:
    """``default.conf.template``: ``${API_KEY}`` is filled in by the image's envsubst step, nginx's
    own ``$variables`` are left alone (only defined environment variables are substituted)."""
    return f"""map $http_authorization $key_ok {{
    default 0;
    "Bearer ${{API_KEY}}" 1;
}}
server {{
    listen {PORT};
    client_max_body_size 64m;
    location / {{
        if ($key_ok = 0) {{
            return 401 '{{"error": "Unauthorized"}}';
        }}
        proxy_pass http://127.0.0.1:{upstream_port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_request_buffering off;
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
    }}
}}
"""


def container(secrets: SecretRefs, config_map: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the sidecar container, its template volume)."""
    sidecar = {
        "name": "auth-proxy",
        "image": IMAGE,
        "env": [*secret_env("API_KEY", secrets.api_key)],
        "ports": [container_port(PORT_NAME, PORT)],
        "volumeMounts": [{"name": VOLUME, "mountPath": TEMPLATE_DIR, "readOnly": True}],
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }
    volume = {"name": VOLUME, "configMap": {"name": config_map}}
    return sidecar, volume

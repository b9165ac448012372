"""Casino-Club web application (Flask). ``create_app()`` binds extensions and blueprints;
nothing connects to PostgreSQL or Redis until a request needs it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

from ccweb.config import Settings, get_settings, set_settings


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive integer that fits PostgreSQL bigint (else 404, not 500)."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=2**63 - 1)


class JSONProvider(DefaultJSONProvider):
    sort_keys = False
    compact = True


def create_app(settings: Settings | None = None) -> Flask:
    from ccweb import db
    from ccweb.actions.routes import bp as actions_bp
    from ccweb.admin.flag_routes import bp as admin_flags_bp
    from ccweb.admin.routes import bp as admin_bp
    from ccweb.admin.segment_routes import bp as admin_segments_bp
    from ccweb.admin.stats_routes import bp as admin_stats_bp
    from ccweb.analytics.routes import bp as analytics_admin_bp
    from ccweb.auth.routes import bp as auth_bp
    from ccweb.dashboard.routes import bp as dashboard_bp
    from ccweb.games.routes import bp as games_bp
    from ccweb.http.errors import register_error_handlers
    from ccweb.http.openapi import bp as openapi_bp
    from ccweb.http.request_metrics import init_request_metrics
    from ccweb.http.validation import init_body_rule
    from ccweb.liveops.admin_routes import bp as liveops_admin_bp
    from ccweb.liveops.routes import bp as liveops_bp
    from ccweb.logs import configure_logging, init_request_logging
    from ccweb.metrics import instrument_engine
    from ccweb.ops.routes import bp as ops_bp
    from ccweb.play.routes import bp as play_bp
    from ccweb.quality.routes import bp as quality_admin_bp
    from ccweb.recommendations.routes import bp as recommendations_bp
    from ccweb.rewards.routes import bp as rewards_bp
    from ccweb.shop.admin_routes import bp as shop_admin_bp
    from ccweb.shop.receipt_routes import bp as shop_receipts_bp
    from ccweb.shop.routes import bp as shop_bp
    from ccweb.shop.webhook_routes import bp as shop_webhook_bp
    from ccweb.streak.routes import bp as streak_bp
    from realtime.routes import init_app as init_realtime

    settings = settings or get_settings()
    set_settings(settings)
    configure_logging(settings)

    app = Flask(__name__)
    app.url_map.converters["id"] = IdConverter
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    app.extensions["cc_settings"] = settings

    instrument_engine(db.init_engine(settings))
    init_request_metrics(app)
    init_request_logging(app, settings)
    init_body_rule(app)  # after metrics and logging: a refused body is measured and logged
    register_error_handlers(app)
    for bp in (
        ops_bp,
        openapi_bp,
        auth_bp,
        rewards_bp,
        admin_bp,
        games_bp,
        actions_bp,
        streak_bp,
        dashboard_bp,
        liveops_bp,
        liveops_admin_bp,
        shop_bp,
        shop_admin_bp,
        shop_webhook_bp,
        shop_receipts_bp,
        quality_admin_bp,
        analytics_admin_bp,
        admin_flags_bp,
        admin_segments_bp,
        recommendations_bp,
        admin_stats_bp,
        play_bp,
    ):
        app.register_blueprint(bp)
    init_realtime(app)  # WebSocket + SSE (realtime/routes.py)
    return app

"""The Chalice app: wiring only. Code lives in chalicelib/."""

from chalice import Chalice

from chalicelib import lifecycle, meta, middleware
from chalicelib.audit import routes as audit_routes
from chalicelib.auth import authorizer as auth_authorizer
from chalicelib.auth import routes as auth_routes
from chalicelib.config import require_valid_settings
from chalicelib.interactions import routes as interaction_routes
from chalicelib.sites import routes as site_routes
from chalicelib.sites import schedule as site_schedule

require_valid_settings()  # refuse to start with a missing or unsafe configuration

app = Chalice(app_name="interactions-api")
app.api.cors = middleware.cors_config()
app.register_middleware(middleware.for_app(app), "http")

app.register_blueprint(auth_authorizer.bp)
app.register_blueprint(auth_routes.bp)
app.register_blueprint(meta.bp)
app.register_blueprint(interaction_routes.bp)
app.register_blueprint(site_routes.bp)
app.register_blueprint(audit_routes.bp)
app.register_blueprint(site_schedule.bp)  # the scheduled retry of invitations' messages

# One-time work at init (more of it for a SnapStart snapshot) and the snapshot/restore hooks.
lifecycle.init(app)

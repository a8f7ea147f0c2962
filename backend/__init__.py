"""The local classification server: a Flask app factory, served by waitress (`backend.serve`)."""

import copy

from flask import Flask

from .config import DEFAULT_CONFIG


def create_app(test_config=None):
    """Create the Flask app: security guard, JSON errors, the v1 API and the model pipeline.

    Args:
        test_config: a mapping overriding the defaults (`backend.config.DEFAULT_CONFIG`) and the
            instance config, e.g. {"CLASSIFIER": predictor, "TOKEN": "...", "CACHE_DIR": ""}.

    Returns:
        The Flask app; its pipeline threads stop with `backend.model.close_app(app)`.
    """
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.from_mapping(copy.deepcopy(DEFAULT_CONFIG))
    app.config.from_pyfile("config.py", silent=True)
    if test_config is not None:
        app.config.from_mapping(test_config)

    from . import api, errors, model, security, setup, setup_api

    errors.init_app(app)
    security.init_app(app)
    setup.init_app(app)
    model.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(setup_api.bp)
    return app

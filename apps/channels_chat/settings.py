"""Minimal Django settings for the tutorial chat: no database, DEBUG off, loopback hosts only,
the in-memory channel layer (one process: daphne's)."""

import secrets

SECRET_KEY = secrets.token_urlsafe(50)  # nothing is signed across restarts
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
DATABASES = {}  # the chat stores nothing; AuthMiddlewareStack finds no session and makes an AnonymousUser
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"  # sessions without a database

ROOT_URLCONF = "apps.channels_chat.urls"
ASGI_APPLICATION = "apps.channels_chat.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

USE_TZ = True

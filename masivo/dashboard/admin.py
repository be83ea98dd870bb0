from django.contrib import admin

from masivo.dashboard.views.auth import admin_login

# Operators sign in through the dashboard's login, which throttles password guessing; the
# admin's own login form would be a second, unthrottled door.
admin.site.login = admin_login

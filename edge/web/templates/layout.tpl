<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · edge-face</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<header class="top">
  <a class="brand" href="/">edge-face</a>
  % if user:
  <nav>
    <a href="/home">Dashboard</a>
    <a href="/users">{{'Users' if web.is_admin() else 'My account'}}</a>
    % if user.status == 'active':
    <a href="/users/{{user.id}}/enrol">Enrol</a>
    <a href="/log">Log</a>
    % end
    % if web.is_admin():
    <a href="/charts">Charts</a>
    <a href="/recognize">Test</a>
    <a href="/settings">Settings</a>
    <a href="/unlock">Unlock</a>
    % end
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf_token" value="{{csrf_token}}">
      <button type="submit" class="link">Log out {{user.username}}</button>
    </form>
  </nav>
  % end
</header>
<main>
% for message in flashes:
<p class="flash">{{message}}</p>
% end
<h1>{{title}}</h1>
{{!base}}
</main>
</body>
</html>

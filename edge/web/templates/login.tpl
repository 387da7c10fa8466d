% rebase('layout.tpl', title=title)
% if error:
<p class="error">{{error}}</p>
% end
<form method="post" action="/login" class="card">
  <input type="hidden" name="csrf_token" value="{{csrf_token}}">
  <label>Username or e-mail <input name="username" value="{{username}}" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Log in</button>
</form>
% if first:
<p>No account exists yet. <a href="/signup">Create the administrator account</a>.</p>
% else:
<p>No account? <a href="/signup">Sign up</a>; an administrator approves new accounts.</p>
% end

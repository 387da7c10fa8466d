% rebase('layout.tpl', title=title)
% if first:
<p class="note">This is the first account: it becomes the administrator of this door.</p>
% end
% if errors.get('form'):
<p class="error">{{errors['form']}}</p>
% end
<form method="post" action="/signup" class="card">
  <input type="hidden" name="csrf_token" value="{{csrf_token}}">
  <label>Username <input name="username" value="{{username}}" autocomplete="username" required></label>
  % if errors.get('username'):
  <span class="field-error">{{errors['username']}}</span>
  % end
  <label>E-mail <input name="email" type="email" value="{{email}}" autocomplete="email" required></label>
  % if errors.get('email'):
  <span class="field-error">{{errors['email']}}</span>
  % end
  <label>Password <input name="password" type="password" autocomplete="new-password" required></label>
  <label>Confirm password <input name="confirm" type="password" autocomplete="new-password" required></label>
  % if errors.get('password'):
  <span class="field-error">{{errors['password']}}</span>
  % end
  <button type="submit">Create account</button>
</form>
<p>Already registered? <a href="/login">Log in</a>.</p>

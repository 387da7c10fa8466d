% rebase('layout.tpl', title=title)
% if first:
<p class="note">This is the first account: it becomes the administrator of this door.</p>
% end
% if get('done'):
<p class="note">Thank you. If this username and e-mail address were not already in use, your account now waits
  for an administrator's approval. Log in with them to see its status.</p>
% elif get('closed'):
<p class="note">New accounts are not taken on this page. Ask an administrator of this door for an account.</p>
% else:
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
  % if get('invite_needed'):
  <label>Invitation code <input name="invite" autocomplete="off" required></label>
  % end
  <button type="submit">Create account</button>
</form>
% end
<p>Already registered? <a href="/login">Log in</a>.</p>

import { useEffect } from "react";
import { LoginForm } from "@/features/auth/components/login-form";

export function LoginRoute() {
  useEffect(() => {
    document.title = "Sign in · kibitz";
  }, []);
  return <LoginForm />;
}

import { useEffect } from "react";
import { RegisterForm } from "@/features/auth/components/register-form";

export function RegisterRoute() {
  useEffect(() => {
    document.title = "Create account · kibitz";
  }, []);
  return <RegisterForm />;
}
